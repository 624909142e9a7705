"""DISCORD: a Discord channel webhook, one embed per notification, coloured by severity.

Config keys: ``webhook_url`` (secret: ``https://discord.com/api/webhooks/<id>/<token>``;
the token in the path is the credential).

Each send executes the webhook with ``?wait=true`` so Discord answers 200 with the
created message, whose ``id`` is returned in ``DeliveryResult.data["message_id"]``. The
body is ``{"username": "IMAS", "embeds": [embed], "allowed_mentions": {"parse": []}}``:
mentions are disabled so an incident title containing ``@everyone`` never pings anyone.
Every user- or alert-supplied string is also made literal with
:func:`providers.text.discord_escape` (masked links ``[x](y)``, ``<@id>`` tags, and a
zero-width space in ``@everyone``/``@here``), so nothing renders as a disguised link or a
mention pill; the only links are the ones built here from URLs.
The embed respects Discord's limits: title <= 256, description <= 4096, <= 25 fields,
field name <= 256, field value <= 1024, 6000 characters in total (counted after escaping).

Idempotency: Discord webhooks take no idempotency key: at-least-once (a retry after a
lost response posts a second message). Errors: 429 (``Retry-After`` header or the JSON
``retry_after`` seconds, handled by HttpClient), 5xx, timeouts and connection failures
raise RetryableProviderError; 401/403/404 (deleted webhook, bad token) and other 4xx
PermanentProviderError.

``check()`` GETs the webhook URL (returns the webhook's name and channel, no side effect).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    ELLIPSIS,
    WebhookUrlConfig,
    extra_text,
    facts,
    is_web_url,
    iso_utc,
    links,
    severity_color,
    summary_line,
    text_heading,
    truncate,
)
from providers.text import discord_escape, fit, one_line

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
EMBED_TOTAL_LIMIT = 6000
FOOTER_TEXT = "IMAS incident response"


def _field(name: str, value: str, *, inline: bool = True, markup: bool = False) -> dict[str, Any]:
    """A field; ``value`` is user text (escaped here) unless ``markup`` (built by IMAS)."""
    return {
        "name": fit(name, FIELD_NAME_LIMIT, discord_escape) or "-",
        "value": (
            truncate(value, FIELD_VALUE_LIMIT)
            if markup
            else fit(value, FIELD_VALUE_LIMIT, discord_escape)
        )
        or "-",
        "inline": inline,
    }


def _masked_link(url: str) -> str:
    """``[Open](url)`` with the characters that end the URL part percent-encoded."""
    safe = "".join(f"%{ord(c):02X}" if c in "()<> \\" or ord(c) < 32 else c for c in url)
    return f"[Open]({safe})"


def embed_title(notification: Notification) -> str:
    """:func:`summary_line` with its user parts (title, service) escaped, <= 256 chars."""
    inc = notification.incident
    raw = summary_line(notification)
    user = f"{one_line(inc.title)} - {one_line(inc.service_name)}"
    head, found, tail = raw.partition(user)
    if not found:  # cannot happen with summary_line's format; escape all of it then
        return fit(raw, TITLE_LIMIT, discord_escape)
    tail = discord_escape(tail)
    room = TITLE_LIMIT - len(head) - len(tail)
    if room < 16:
        return fit(raw, TITLE_LIMIT, discord_escape)
    return head + fit(user, room, discord_escape) + tail


def _cut_markdown(text: str, limit: int) -> str:
    """Cut escaped markdown without leaving a lone backslash or half a ``@``+ZWSP pair."""
    cut = truncate(text, limit)
    if cut == text or not cut:
        return cut
    head = cut[: -len(ELLIPSIS)] if cut.endswith(ELLIPSIS) else cut
    trailing = len(head) - len(head.rstrip("\\"))
    if trailing % 2:  # an odd run of backslashes: the last one escaped the cut character
        head = head[:-1]
    return head + ELLIPSIS


def discord_embed(notification: Notification, *, now: datetime | None = None) -> dict[str, Any]:
    """One embed for ``notification``, within Discord's size limits."""
    inc = notification.incident
    fields = [_field(label, value) for label, value in facts(notification)]
    for label, url in links(inc):
        if label == "Incident":
            continue
        if is_web_url(url):
            fields.append(_field(label, _masked_link(url), markup=True))
        else:
            fields.append(_field(label, url))
    if inc.war_room_channel_id and not inc.war_room_url:
        fields.append(_field("War room", inc.war_room_channel_id))
    fields = fields[:FIELDS_LIMIT]

    parts = []
    extra = extra_text(notification)
    if extra:
        parts.append(f"**{text_heading(notification.event)}:** {discord_escape(extra)}")
    if inc.description:
        parts.append(discord_escape(inc.description))
    title = embed_title(notification)
    used = len(title) + len(FOOTER_TEXT) + sum(len(f["name"]) + len(f["value"]) for f in fields)
    description = _cut_markdown(
        "\n\n".join(parts), min(DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - used)
    )

    embed: dict[str, Any] = {
        "title": title,
        "description": description,
        "color": severity_color(inc.severity),
        "fields": fields,
        "footer": {"text": FOOTER_TEXT},
        "timestamp": iso_utc(now or datetime.now(UTC)),
    }
    if is_web_url(inc.incident_url) and len(inc.incident_url) <= 2048:
        embed["url"] = inc.incident_url
    if not description:
        del embed["description"]
    return embed


def discord_payload(notification: Notification, *, now: datetime | None = None) -> dict[str, Any]:
    """The execute-webhook body."""
    return {
        "username": "IMAS",
        "embeds": [discord_embed(notification, now=now)],
        "allowed_mentions": {"parse": []},
    }


def with_wait(url: str) -> str:
    """``url`` with ``wait=true`` added to its query (other parameters kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
    query.append(("wait", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


class DiscordConfig(WebhookUrlConfig):
    """DISCORD config. ``webhook_url``: the channel webhook URL (a secret)."""


class DiscordProvider(NotificationProvider):
    """Posts one embed per notification to a Discord webhook (recipient kind ``default``)."""

    type = "DISCORD"
    config_model = DiscordConfig
    recipient_kinds = frozenset({"default"})
    supports_dedup = False
    secret_keys = frozenset({"webhook_url"})

    @property
    def settings(self) -> DiscordConfig:
        return cast(DiscordConfig, self.config)

    @classmethod
    def target_urls(cls, config: ProviderConfig) -> dict[str, str]:
        return {"webhook_url": cast(DiscordConfig, config).webhook_url.get_secret_value()}

    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,  # noqa: ARG002 - contract argument
        prior: Mapping[str, Any] | None = None,  # noqa: ARG002 - contract argument
    ) -> DeliveryResult:
        """Post one message. At-least-once; raises Retryable/PermanentProviderError."""
        self.require_recipient_kind(recipient)
        url = with_wait(self.settings.webhook_url.get_secret_value())
        response = self.http.request("POST", url, json=discord_payload(notification))
        data: dict[str, Any] = {}
        if response.status_code == 200 and response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("id"):
                data["message_id"] = str(body["id"])
        detail = "Discord message posted"
        if "message_id" in data:
            detail += f" (id {data['message_id']})"
        return DeliveryResult(detail=detail, data=data)

    def check(self) -> CheckResult:
        """GET the webhook (read-only): valid token and existing webhook."""
        try:
            response = self.http.request("GET", self.settings.webhook_url.get_secret_value())
        except ProviderError as exc:
            return CheckResult(False, f"Discord webhook check failed: {exc.describe()}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        name = body.get("name") if isinstance(body, dict) else None
        channel = body.get("channel_id") if isinstance(body, dict) else None
        return CheckResult(
            True, f"Discord webhook {name or '?'} (channel {channel or '?'}) reachable"
        )
