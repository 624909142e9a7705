"""NTFY: push notifications through an ntfy server (https://ntfy.sh or self-hosted).

Config keys:

* ``server`` (default ``https://ntfy.sh``): the server's base URL;
* ``topic`` (required): 1-64 characters of ``A-Z a-z 0-9 _ -``;
* ``priority`` (optional): ``min|low|default|high|urgent|max`` or 1-5 (``max`` = ``urgent``
  = 5). When absent it follows the incident severity: SEV1 urgent (5), SEV2 high (4),
  SEV3 default (3), SEV4 low (2); resolved events are sent at ``default`` at most;
* ``token`` (secret, optional): an access token sent as ``Authorization: Bearer <token>``.

Each send is one JSON publish: ``POST <server>/`` with ``{"topic", "title", "message",
"priority": int, "tags": [...], "click": <incident url>, "actions": [view actions for the
LID, war room and runbook, at most 3]}``. ntfy answers with the message JSON; its ``id`` is
returned in ``DeliveryResult.data["message_id"]``.

Escaping: the publish is JSON, so no user text travels in an HTTP header (no ``Title:``
header to inject CR/LF into, no latin-1/RFC 2047 limit). The title and tags are still one
line without control characters (:func:`providers.text.one_line`), and the message is plain
text: ``markdown`` is never set, so ``[x](y)`` shows as typed.

Idempotency: ntfy takes no idempotency key: at-least-once. Errors: HttpClient
classification (429 / 5xx / timeouts Retryable; 401/403 bad token and other 4xx
Permanent). ``check()`` calls ``GET <server>/v1/health`` and, with a token,
``GET <server>/v1/account`` (both read-only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from pydantic import ConfigDict, SecretStr, field_validator

from bot.domain.errors import ProviderError
from providers.base import (
    CheckResult,
    DeliveryResult,
    Notification,
    NotificationProvider,
    ProviderConfig,
    Recipient,
)
from providers.messages import (
    is_web_url,
    links,
    summary_line,
    text_body,
    truncate,
    validate_http_url,
)
from providers.text import one_line, strip_control

PRIORITY_NAMES = {"min": 1, "low": 2, "default": 3, "high": 4, "urgent": 5, "max": 5}
SEVERITY_PRIORITY = {"SEV1_CRITICAL": 5, "SEV2_HIGH": 4, "SEV3_MEDIUM": 3, "SEV4_LOW": 2}
SEVERITY_TAG = {
    "SEV1_CRITICAL": "rotating_light",
    "SEV2_HIGH": "warning",
    "SEV3_MEDIUM": "large_yellow_circle",
    "SEV4_LOW": "large_green_circle",
}
EVENT_TAG = {
    "resolved": "white_check_mark",
    "acknowledged": "eyes",
    "mitigated": "adhesive_bandage",
}
MESSAGE_LIMIT = 3500  # ntfy turns messages over 4096 bytes into attachments
MAX_ACTIONS = 3
_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")


def parse_priority(value: Any) -> int | None:
    """A priority name or 1-5 (int or digit string) as an int; ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("priority must be min|low|default|high|urgent|max or 1-5")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lower() in PRIORITY_NAMES:
        return PRIORITY_NAMES[value.strip().lower()]
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError("priority must be min|low|default|high|urgent|max or 1-5")
    if not 1 <= number <= 5:
        raise ValueError("priority must be between 1 and 5")
    return number


class NtfyConfig(ProviderConfig):
    """NTFY config; see the module docstring."""

    model_config = ConfigDict(hide_input_in_errors=True)  # inputs may be secrets

    server: str = "https://ntfy.sh"
    topic: str
    priority: int | None = None
    token: SecretStr | None = None

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        return validate_http_url(value).rstrip("/")

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _TOPIC.match(value):
            raise ValueError("topic must be 1-64 characters of letters, digits, '_' or '-'")
        return value

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> int | None:
        return parse_priority(value)


def ntfy_priority(notification: Notification, configured: int | None) -> int:
    """Configured priority, else derived from severity (resolved: at most ``default``)."""
    if configured is not None:
        return configured
    priority = SEVERITY_PRIORITY.get(notification.incident.severity, 3)
    if notification.event == "resolved":
        priority = min(priority, 3)
    return priority


def ntfy_message(notification: Notification, topic: str, priority: int | None) -> dict[str, Any]:
    """The JSON publish body."""
    inc = notification.incident
    tags = [SEVERITY_TAG.get(inc.severity, "bell")]
    if notification.event in EVENT_TAG:
        tags.insert(0, EVENT_TAG[notification.event])
    tags += [one_line(inc.severity), truncate(one_line(inc.service_name), 100)]
    body: dict[str, Any] = {
        "topic": topic,
        "title": one_line(summary_line(notification, emoji=False)),
        "message": truncate(strip_control(text_body(notification)), MESSAGE_LIMIT),
        "priority": ntfy_priority(notification, priority),
        "tags": tags,
    }
    if is_web_url(inc.incident_url):
        body["click"] = inc.incident_url
    order = {"LID": 0, "War room": 1, "Runbook": 2}
    targets = sorted(
        ((label, url) for label, url in links(inc) if label != "Incident" and is_web_url(url)),
        key=lambda pair: order.get(pair[0], 9),
    )
    if targets:
        body["actions"] = [
            {"action": "view", "label": label, "url": url, "clear": False}
            for label, url in targets[:MAX_ACTIONS]
        ]
    return body


class NtfyProvider(NotificationProvider):
    """Publishes to one ntfy topic (recipient kind ``default``)."""

    type = "NTFY"
    config_model = NtfyConfig
    recipient_kinds = frozenset({"default"})
    supports_dedup = False
    secret_keys = frozenset({"token"})

    @classmethod
    def target_urls(cls, config: ProviderConfig) -> dict[str, str]:
        return {"server": cast(NtfyConfig, config).server}

    @property
    def settings(self) -> NtfyConfig:
        return cast(NtfyConfig, self.config)

    def _auth(self) -> dict[str, str]:
        token = self.settings.token
        return {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}

    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,  # noqa: ARG002 - contract argument
        prior: Mapping[str, Any] | None = None,  # noqa: ARG002 - contract argument
    ) -> DeliveryResult:
        """Publish one message. At-least-once; raises Retryable/PermanentProviderError."""
        self.require_recipient_kind(recipient)
        cfg = self.settings
        body = ntfy_message(notification, cfg.topic, cfg.priority)
        response = self.http.request("POST", f"{cfg.server}/", json=body, headers=self._auth())
        data: dict[str, Any] = {}
        try:
            reply = response.json()
            if isinstance(reply, dict) and reply.get("id"):
                data["message_id"] = str(reply["id"])
        except ValueError:
            pass
        return DeliveryResult(
            detail=f"ntfy message published to topic {cfg.topic} (priority {body['priority']})",
            data=data,
        )

    def check(self) -> CheckResult:
        """Server health, and the token's validity when one is configured."""
        cfg = self.settings
        try:
            self.http.request("GET", f"{cfg.server}/v1/health")
            if cfg.token is not None:
                self.http.request("GET", f"{cfg.server}/v1/account", headers=self._auth())
        except ProviderError as exc:
            return CheckResult(False, f"ntfy check failed: {exc.describe()}")
        return CheckResult(
            True, f"ntfy server reachable{' and token accepted' if cfg.token else ''}"
        )
