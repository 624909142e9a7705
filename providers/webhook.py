"""WEBHOOK: one outbound HTTP call per notification, in one of six formats.

Config keys:

* ``format``: ``json`` (default) | ``pagerduty`` | ``opsgenie`` | ``slack`` | ``teams`` |
  ``custom`` (case-insensitive);
* ``url`` (secret - Slack and Teams webhook URLs carry their credential): the target.
  Required for json/slack/teams/custom. PagerDuty: defaults to
  ``https://events.pagerduty.com/v2/enqueue``. Opsgenie: the API base (a trailing
  ``/v2/alerts`` is accepted and stripped);
* ``endpoint``: base URL override for pagerduty (``<endpoint>/v2/enqueue``) and opsgenie
  (e.g. ``https://api.eu.opsgenie.com``; default ``https://api.opsgenie.com``); it wins
  over ``url`` for opsgenie;
* ``routing_key`` (secret, required for pagerduty): the Events API v2 integration key;
* ``api_key`` (secret, required for opsgenie): sent as ``Authorization: GenieKey <key>``;
* ``headers``: extra request headers ``{name: value}`` added to every call; the values are
  secrets (masked in ``repr``, logs and exports);
* ``template`` (required for custom): see "custom" below.

Keys that do not apply to the chosen format (``routing_key`` without pagerduty, ...) are
rejected, so a typo in ``format`` does not silently drop a credential.

Formats:

* ``pagerduty`` - Events API v2. created / escalated / page / severity_changed / reopened /
  status_update / test -> ``trigger``; acknowledged and mitigated -> ``acknowledge``;
  resolved -> ``resolve``. ``dedup_key`` is ``imas-<short_id>`` for every event of an
  incident, so retries and repeats fold into one PagerDuty alert. Trigger payload: summary
  (<= 1024), severity (SEV1 critical, SEV2 error, SEV3 warning, SEV4 info), source
  ``imas``, component = service, group = team, class ``incident``, timestamp,
  custom_details, links (incident, LID, runbook, war room), client / client_url.
* ``opsgenie`` - Alert API v2. Trigger-like events -> ``POST /v2/alerts`` (message <= 130,
  alias ``imas-<short_id>``, description, priority P1..P4, tags, details str->str, source
  ``IMAS``, entity = service); acknowledged / mitigated ->
  ``POST /v2/alerts/<alias>/acknowledge?identifierType=alias``; resolved ->
  ``POST /v2/alerts/<alias>/close?identifierType=alias``. Opsgenie folds creates with the
  same alias into the open alert.
* ``json`` - ``POST url`` with the documented document (stable, ``version`` 1)::

      {"version": 1, "event": "created", "summary": "[SEV1_CRITICAL] INC-... : created",
       "incident": {every IncidentView field; datetimes ISO 8601 UTC},
       "text": str | null, "actor": str | null, "idempotency_key": str}

  with headers ``Idempotency-Key`` and Standard-Webhooks-style ``webhook-id`` (both the
  idempotency key, stable across retries) and ``webhook-timestamp`` (unix seconds).
* ``slack`` - a Slack incoming webhook: ``{"text": <summary>, "blocks": [...]}``; every
  user- or alert-supplied string in ``text`` and mrkdwn is escaped
  (:func:`providers.text.slack_escape`), links are buttons built from URLs.
* ``teams`` - the same Adaptive Card message as the TEAMS provider.
* ``custom`` - ``template`` is a JSON document with ``string.Template`` placeholders
  (``$name`` / ``${name}``; ``$$`` for a literal ``$``). Every value is inserted
  JSON-string-escaped without quotes, so write placeholders inside JSON strings
  (``{"title": "$title"}``); ``$severity_rank`` and ``$incident_id`` are digits and may stand
  bare. The rendered text must be valid JSON (checked at config time with sample data and
  at send time). Variables: ``event``, ``event_label``, ``summary`` (no emoji),
  ``summary_emoji``, ``incident_id``, ``short_id``, ``title``, ``description``,
  ``severity``, ``severity_short`` (SEV1), ``severity_rank`` (1-4), ``severity_color``
  (#RRGGBB), ``emoji``, ``status``, ``service``, ``team``, ``lead``, ``lead_email``,
  ``incident_url``, ``lid_url``, ``runbook_url``, ``war_room_url``, ``war_room_channel_id``,
  ``resolution_summary``, ``created_at`` (ISO 8601), ``text``, ``actor``,
  ``idempotency_key``, ``body`` (plain-text body), ``sms`` (160-char text). Missing values
  are empty strings. Sent with the same idempotency headers as ``json``.

Idempotency: ``supports_dedup`` is True because pagerduty (``dedup_key``) and opsgenie
(``alias``) fold repeats. The other formats are at-least-once: json and custom carry an
``Idempotency-Key`` the receiver may use; slack and teams cannot dedup at all.

Late events: a trigger-like event for an incident whose status is already ``RESOLVED``
(e.g. a delayed retry of ``created``) is sent as resolve/close instead, so a retry never
re-opens a pager alert.

Errors: HttpClient classification (429 with Retry-After, 5xx, timeouts -> Retryable; other
4xx -> Permanent; private targets refused unless allowed). Secrets are never put in error
messages.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, cast
from urllib.parse import quote

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.domain.errors import PermanentProviderError, ProviderError
from providers.base import (
    CheckResult,
    DeliveryResult,
    IncidentView,
    Notification,
    NotificationProvider,
    ProviderConfig,
    Recipient,
)
from providers.messages import (
    extra_text,
    facts,
    incident_dict,
    is_web_url,
    lead_display,
    links,
    summary_line,
    template_fields,
    text_body,
    text_heading,
    truncate,
    validate_http_url,
)
from providers.teams import check_legacy_reply, teams_message
from providers.text import slack_escape, slack_fit, slack_truncate

WebhookFormat = Literal["json", "pagerduty", "opsgenie", "slack", "teams", "custom"]

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
OPSGENIE_URL = "https://api.opsgenie.com"
JSON_DOCUMENT_VERSION = 1

TRIGGER_EVENTS = frozenset(
    {"created", "escalated", "page", "severity_changed", "reopened", "status_update", "test"}
)
ACK_EVENTS = frozenset({"acknowledged", "mitigated"})
RESOLVE_EVENTS = frozenset({"resolved"})

PAGERDUTY_SEVERITY = {
    "SEV1_CRITICAL": "critical",
    "SEV2_HIGH": "error",
    "SEV3_MEDIUM": "warning",
    "SEV4_LOW": "info",
}
OPSGENIE_PRIORITY = {
    "SEV1_CRITICAL": "P1",
    "SEV2_HIGH": "P2",
    "SEV3_MEDIUM": "P3",
    "SEV4_LOW": "P4",
}

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def dedup_key(incident: IncidentView) -> str:
    """The PagerDuty ``dedup_key`` / Opsgenie ``alias`` of an incident: ``imas-<short_id>``."""
    return f"imas-{incident.short_id}"


def pager_action(notification: Notification) -> str:
    """``trigger`` | ``acknowledge`` | ``resolve`` for ``notification`` (see module doc)."""
    event = notification.event
    if event in RESOLVE_EVENTS:
        return "resolve"
    if event in ACK_EVENTS:
        return "acknowledge"
    if notification.incident.status.upper() == "RESOLVED":
        return "resolve"  # a late trigger-like event must not re-open the pager alert
    return "trigger"


def _escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def render_template(template: str, fields: Mapping[str, str]) -> str:
    """Substitute ``fields`` (JSON-escaped) into ``template``; ValueError if not JSON."""
    rendered = string.Template(template).substitute({k: _escaped(v) for k, v in fields.items()})
    json.loads(rendered)
    return rendered


# --- payload builders (pure) ------------------------------------------------------------


def pagerduty_event(notification: Notification, routing_key: str) -> dict[str, Any]:
    """Events API v2 body for ``notification``."""
    inc = notification.incident
    action = pager_action(notification)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(inc),
    }
    if action != "trigger":
        return event
    details: dict[str, Any] = {
        "short_id": inc.short_id,
        "event": notification.event,
        "title": inc.title,
        "severity": inc.severity,
        "status": inc.status,
        "service": inc.service_name,
        "team": inc.team_name,
        "lead": lead_display(inc),
        "incident_url": inc.incident_url,
    }
    optional = {
        "description": truncate(inc.description, 4000) if inc.description else None,
        "text": truncate(extra_text(notification) or "", 4000) or None,
        "actor": notification.actor,
        "lid_url": inc.lid_url,
        "runbook_url": inc.runbook_url,
        "war_room_url": inc.war_room_url,
    }
    details.update({k: v for k, v in optional.items() if v})
    event["payload"] = {
        "summary": truncate(summary_line(notification, emoji=False), 1024),
        "severity": PAGERDUTY_SEVERITY.get(inc.severity, "warning"),
        "source": "imas",
        "component": inc.service_name,
        "group": inc.team_name,
        "class": "incident",
        "timestamp": incident_dict(inc)["created_at"],
        "custom_details": details,
    }
    event["client"] = "IMAS"
    if is_web_url(inc.incident_url):
        event["client_url"] = inc.incident_url
    event["links"] = [
        {"href": url, "text": "Incident" if label == "Incident" else label}
        for label, url in links(inc)
        if is_web_url(url)
    ]
    return event


def opsgenie_create(notification: Notification) -> dict[str, Any]:
    """``CreateAlertPayload`` for ``notification``."""
    inc = notification.incident
    details = {
        "short_id": inc.short_id,
        "event": notification.event,
        "severity": inc.severity,
        "status": inc.status,
        "service": inc.service_name,
        "team": inc.team_name,
        "lead": lead_display(inc),
        "incident_url": inc.incident_url,
        "lid_url": inc.lid_url or "",
        "runbook_url": inc.runbook_url or "",
        "war_room_url": inc.war_room_url or "",
    }
    body: dict[str, Any] = {
        "message": truncate(summary_line(notification, emoji=False), 130),
        "alias": dedup_key(inc),
        "description": truncate(text_body(notification), 15000),
        "priority": OPSGENIE_PRIORITY.get(inc.severity, "P3"),
        "tags": [
            t[:50]
            for t in ("imas", inc.severity, f"service:{inc.service_name}", f"team:{inc.team_name}")
        ],
        "details": {k: truncate(v, 1000) for k, v in details.items() if v},
        "source": "IMAS",
        "entity": truncate(inc.service_name, 512),
    }
    if notification.actor:
        body["user"] = truncate(notification.actor, 100)
    extra = extra_text(notification)
    if extra:
        body["note"] = truncate(f"{text_heading(notification.event)}: {extra}", 25000)
    return body


def opsgenie_action(notification: Notification) -> dict[str, Any]:
    """Acknowledge/Close ``AlertActionPayload`` for ``notification``."""
    body: dict[str, Any] = {
        "source": "IMAS",
        "note": truncate(
            summary_line(notification, emoji=False)
            + (f"\n{extra}" if (extra := extra_text(notification)) else ""),
            25000,
        ),
    }
    if notification.actor:
        body["user"] = truncate(notification.actor, 100)
    return body


def slack_webhook_payload(notification: Notification) -> dict[str, Any]:
    """Slack incoming-webhook body: fallback ``text`` plus Block Kit ``blocks``."""
    inc = notification.incident
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(inc.headline, 150), "emoji": True},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": slack_truncate(
                    slack_escape(f"*{inc.short_id}*: {summary_line(notification, emoji=False)}"),
                    3000,
                ),
            },
            "fields": [
                {"type": "mrkdwn", "text": f"*{slack_escape(label)}*\n{slack_fit(value, 1900)}"}
                for label, value in facts(notification)[:10]
            ],
        },
    ]
    extra = extra_text(notification)
    if extra:
        text = f"*{text_heading(notification.event)}:*\n{slack_fit(extra, 2900)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if inc.description:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": slack_fit(inc.description, 3000)},
            }
        )
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "View incident" if lbl == "Incident" else lbl},
            "url": url,
        }
        for lbl, url in links(inc)
        if is_web_url(url) and len(url) <= 3000
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": slack_fit(summary_line(notification), 3000), "blocks": blocks}


def json_document(notification: Notification, idempotency_key: str) -> dict[str, Any]:
    """The ``format: json`` document (see module docstring)."""
    return {
        "version": JSON_DOCUMENT_VERSION,
        "event": notification.event,
        "summary": summary_line(notification, emoji=False),
        "incident": incident_dict(notification.incident),
        "text": extra_text(notification),
        "actor": notification.actor,
        "idempotency_key": idempotency_key,
    }


def _sample_notification() -> Notification:
    incident = IncidentView(
        id=1,
        short_id="INC-000000",
        title='Sample "title" with $ and \\ and\nnewline',
        description="Sample description",
        severity="SEV1_CRITICAL",
        status="TRIGGERED",
        service_name="sample-service",
        team_name="Sample Team",
        lead_name="Sample Lead",
        lead_email="lead@example.com",
        incident_url="https://imas.example.com/incidents/INC-000000",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    return Notification(event="created", incident=incident, text="sample text", actor="someone")


TEMPLATE_VARIABLES = frozenset(template_fields(_sample_notification()))


# --- config -----------------------------------------------------------------------------


class WebhookConfig(ProviderConfig):
    """WEBHOOK config; see the module docstring for every key."""

    model_config = ConfigDict(hide_input_in_errors=True)  # inputs may be secrets

    format: WebhookFormat = "json"
    url: SecretStr | None = None
    endpoint: str | None = None
    routing_key: SecretStr | None = None
    api_key: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    template: str | None = None

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(validate_http_url(value.get_secret_value()))

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else validate_http_url(value).rstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if any(c in secret.get_secret_value() for c in "\r\n\0"):
                raise ValueError(f"header {name!r}: value contains a line break")
        return value

    @model_validator(mode="after")
    def _per_format(self) -> WebhookConfig:
        fmt = self.format
        if fmt == "pagerduty" and not _filled(self.routing_key):
            raise ValueError("format pagerduty requires routing_key")
        if fmt == "opsgenie" and not _filled(self.api_key):
            raise ValueError("format opsgenie requires api_key")
        if fmt in ("json", "slack", "teams", "custom") and self.url is None:
            raise ValueError(f"format {fmt} requires url")
        if fmt == "custom" and not self.template:
            raise ValueError("format custom requires template")
        unused = [
            key
            for key, value, formats in (
                ("routing_key", self.routing_key, ("pagerduty",)),
                ("api_key", self.api_key, ("opsgenie",)),
                ("template", self.template, ("custom",)),
                ("endpoint", self.endpoint, ("pagerduty", "opsgenie")),
            )
            if value is not None and fmt not in formats
        ]
        if unused:
            raise ValueError(f"{', '.join(unused)} not used with format {fmt}")
        if fmt == "custom" and self.template:
            _check_template(self.template)
        return self


def _filled(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def _check_template(template: str) -> None:
    tpl = string.Template(template)
    if not tpl.is_valid():
        raise ValueError("template has an invalid $placeholder (use $$ for a literal $)")
    unknown = sorted(set(tpl.get_identifiers()) - TEMPLATE_VARIABLES)
    if unknown:
        raise ValueError(
            f"template uses unknown variables {', '.join(unknown)} "
            f"(known: {', '.join(sorted(TEMPLATE_VARIABLES))})"
        )
    try:
        render_template(template, template_fields(_sample_notification(), "sample-key"))
    except ValueError as exc:
        raise ValueError(f"template does not render valid JSON: {exc}") from None


# --- provider ---------------------------------------------------------------------------


class WebhookProvider(NotificationProvider):
    """Generic outbound webhook with PagerDuty, Opsgenie, Slack, Teams and custom formats."""

    type = "WEBHOOK"
    config_model = WebhookConfig
    recipient_kinds = frozenset({"default"})
    # True for pagerduty/opsgenie; json/custom/slack/teams are at-least-once (module doc).
    supports_dedup = True
    secret_keys = frozenset({"url", "routing_key", "api_key", "headers"})

    @property
    def settings(self) -> WebhookConfig:
        return cast(WebhookConfig, self.config)

    @classmethod
    def target_urls(cls, config: ProviderConfig) -> dict[str, str]:
        cfg = cast(WebhookConfig, config)
        urls = {"url": cfg.url.get_secret_value()} if cfg.url is not None else {}
        if cfg.endpoint:
            urls["endpoint"] = cfg.endpoint
        return urls

    # targets

    def pagerduty_url(self) -> str:
        cfg = self.settings
        if cfg.url is not None:
            return cfg.url.get_secret_value()
        if cfg.endpoint:
            return f"{cfg.endpoint}/v2/enqueue"
        return PAGERDUTY_URL

    def opsgenie_base(self) -> str:
        cfg = self.settings
        if cfg.endpoint:
            return cfg.endpoint
        if cfg.url is not None:
            base = cfg.url.get_secret_value().rstrip("/")
            return base.removesuffix("/v2/alerts")
        return OPSGENIE_URL

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        headers.update({k: v.get_secret_value() for k, v in self.settings.headers.items()})
        return headers

    def _idempotency_headers(self, idempotency_key: str) -> dict[str, str]:
        return {
            "Idempotency-Key": idempotency_key,
            "webhook-id": idempotency_key,
            "webhook-timestamp": str(int(time.time())),
        }

    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,
        prior: Mapping[str, Any] | None = None,  # noqa: ARG002 - contract argument
    ) -> DeliveryResult:
        """One call (Opsgenie: one call per event). Raises Retryable/PermanentProviderError."""
        self.require_recipient_kind(recipient)
        fmt = self.settings.format
        if fmt == "pagerduty":
            return self._send_pagerduty(notification)
        if fmt == "opsgenie":
            return self._send_opsgenie(notification)
        url = cast(SecretStr, self.settings.url).get_secret_value()
        if fmt == "slack":
            self.http.request(
                "POST", url, json=slack_webhook_payload(notification), headers=self._headers()
            )
            return DeliveryResult(detail="Slack incoming webhook accepted the message")
        if fmt == "teams":
            response = self.http.request(
                "POST", url, json=teams_message(notification), headers=self._headers()
            )
            check_legacy_reply(response.text)
            return DeliveryResult(detail="Teams webhook accepted the card")
        headers = self._idempotency_headers(idempotency_key)
        if fmt == "custom":
            try:
                body = render_template(
                    cast(str, self.settings.template),
                    template_fields(notification, idempotency_key),
                )
            except (ValueError, KeyError) as exc:
                raise PermanentProviderError(
                    f"WEBHOOK provider {self.name!r}: template did not render valid JSON "
                    f"({type(exc).__name__})",
                    hint="check the provider's template",
                ) from None
            headers["Content-Type"] = "application/json"
            response = self.http.request(
                "POST", url, data=body.encode(), headers=self._headers(headers)
            )
        else:
            response = self.http.request(
                "POST",
                url,
                json=json_document(notification, idempotency_key),
                headers=self._headers(headers),
            )
        return DeliveryResult(
            detail=f"webhook accepted the {fmt} notification (HTTP {response.status_code})"
        )

    def _send_pagerduty(self, notification: Notification) -> DeliveryResult:
        routing_key = cast(SecretStr, self.settings.routing_key).get_secret_value()
        event = pagerduty_event(notification, routing_key)
        response = self.http.request(
            "POST", self.pagerduty_url(), json=event, headers=self._headers()
        )
        key = event["dedup_key"]
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("dedup_key"), str):
                key = body["dedup_key"]
        except ValueError:
            pass
        return DeliveryResult(
            detail=f"PagerDuty {event['event_action']} accepted (dedup_key {key})",
            data={"dedup_key": key},
        )

    def _send_opsgenie(self, notification: Notification) -> DeliveryResult:
        api_key = cast(SecretStr, self.settings.api_key).get_secret_value()
        headers = self._headers({"Authorization": f"GenieKey {api_key}"})
        base = self.opsgenie_base()
        alias = dedup_key(notification.incident)
        action = pager_action(notification)
        if action == "trigger":
            url, body, verb = f"{base}/v2/alerts", opsgenie_create(notification), "create"
        else:
            verb = "acknowledge" if action == "acknowledge" else "close"
            url = f"{base}/v2/alerts/{quote(alias, safe='')}/{verb}?identifierType=alias"
            body = opsgenie_action(notification)
        response = self.http.request("POST", url, json=body, headers=headers)
        data: dict[str, Any] = {"alias": alias}
        try:
            reply = response.json()
            if isinstance(reply, dict) and reply.get("requestId"):
                data["request_id"] = str(reply["requestId"])
        except ValueError:
            pass
        return DeliveryResult(detail=f"Opsgenie {verb} accepted (alias {alias})", data=data)

    def check(self) -> CheckResult:
        """Opsgenie: read-only ``GET /v2/alerts?limit=1`` validates the key. Others: config."""
        if self.settings.format != "opsgenie":
            return super().check()
        api_key = cast(SecretStr, self.settings.api_key).get_secret_value()
        try:
            self.http.request(
                "GET",
                f"{self.opsgenie_base()}/v2/alerts?limit=1",
                headers=self._headers({"Authorization": f"GenieKey {api_key}"}),
            )
        except ProviderError as exc:
            if exc.code == "HTTP 403":
                return CheckResult(
                    True, "Opsgenie API key accepted (no read access; alerts can still be created)"
                )
            return CheckResult(False, f"Opsgenie check failed: {exc.describe()}")
        return CheckResult(True, "Opsgenie API key valid")
