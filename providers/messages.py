"""Shared rendering of a ``Notification`` into text, so every channel tells the same facts.

Every non-Slack provider builds its message from these pure functions:

* :func:`summary_line` - one line: ``"🔴 [SEV1_CRITICAL] INC-A1B2C3 Title - service: created"``
  (the last words depend on the event, see :data:`EVENT_LABELS`);
* :func:`facts` - the (label, value) pairs shown as fields: severity, status, service,
  team, lead (and who acted, when known);
* :func:`links` - the (label, url) pairs: incident, LID, runbook, war room;
* :func:`text_body` - the plain-text body (title, facts, description, the notification's
  own text such as a status update or resolution summary, links);
* :func:`html_body` - the same as HTML, every value escaped, only http(s) links clickable;
* :func:`sms_text` - at most 160 characters, no emoji (keeps the GSM-7 alphabet usable).

Nothing here does I/O, reads the clock or raises for odd input: unknown events and
severities are rendered with neutral fallbacks.

Escaping: these builders return *plain* text (the HTML body excepted, where every value is
``html.escape``-d). Single-line values (the summary line, titles, names in facts) have
their control characters and line breaks removed (:func:`providers.text.one_line`), so they
are safe in an e-mail ``Subject`` or a push title. Each target escapes the rest for its own
markup: Slack with ``providers.text.slack_escape``, Discord ``discord_escape``, Teams
``teams_escape``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import (
    SEVERITY_COLOR,
    SEVERITY_RANK,
    IncidentView,
    Notification,
    ProviderConfig,
)
from providers.text import one_line, strip_control

# Wording of each event at the end of the summary line.
EVENT_LABELS: dict[str, str] = {
    "created": "created",
    "acknowledged": "acknowledged",
    "mitigated": "mitigated",
    "severity_changed": "severity changed",
    "resolved": "resolved",
    "reopened": "reopened",
    "escalated": "escalated",
    "status_update": "status update",
    "page": "paging on-call",
    "test": "test notification",
}

# Heading given to ``Notification.text`` in bodies, per event.
TEXT_HEADINGS: dict[str, str] = {
    "resolved": "Resolution summary",
    "status_update": "Status update",
    "page": "Page reason",
    "escalated": "Escalation",
    "severity_changed": "Severity change",
}

DEFAULT_COLOR = 0x9E9E9E
ELLIPSIS = "…"
SMS_LIMIT = 160
SMS_ELLIPSIS = "..."  # ASCII: "…" is not in the GSM-7 alphabet and would force UCS-2


def event_label(event: str) -> str:
    """Human wording of ``event`` (unknown events: underscores become spaces)."""
    return EVENT_LABELS.get(event, event.replace("_", " "))


def severity_short(severity: str) -> str:
    """``SEV1_CRITICAL`` -> ``SEV1``."""
    return severity.split("_", 1)[0]


def severity_color(severity: str) -> int:
    """RGB colour of a severity (grey when unknown)."""
    return SEVERITY_COLOR.get(severity, DEFAULT_COLOR)


def truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``ellipsis`` when cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[:limit]
    return text[: limit - len(ellipsis)].rstrip() + ellipsis


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lead_display(incident: IncidentView) -> str:
    """The lead's name, else e-mail, else ``unassigned`` (on one line)."""
    return one_line(incident.lead_name or incident.lead_email) or "unassigned"


def summary_line(
    notification: Notification,
    *,
    emoji: bool = True,
    escape: Callable[[str], str] | None = None,
) -> str:
    """One line: ``"🔴 [SEV1_CRITICAL] INC-A1B2C3 Title - redis-prod: created"``.

    Never contains a line break or control character (it is an e-mail Subject).
    ``escape`` (e.g. ``teams_escape``) is applied to the user-supplied parts only (title,
    service), so IMAS's own ``[SEV1_CRITICAL]`` stays as written."""
    inc = notification.incident
    prefix = f"{inc.emoji} " if emoji else ""
    user = f"{one_line(inc.title)} - {one_line(inc.service_name)}"
    if escape is not None:
        user = escape(user)
    return one_line(
        f"{prefix}[{inc.severity}] {inc.short_id} {user}: {event_label(notification.event)}"
    )


def facts(notification: Notification) -> list[tuple[str, str]]:
    """The labelled facts shown as fields, in display order (values on one line)."""
    inc = notification.incident
    result = [
        ("Severity", inc.severity),
        ("Status", inc.status),
        ("Service", inc.service_name),
        ("Team", inc.team_name),
        ("Lead", lead_display(inc)),
    ]
    if notification.actor:
        result.append(("By", notification.actor))
    return [(label, one_line(value)) for label, value in result]


def links(incident: IncidentView) -> list[tuple[str, str]]:
    """(label, url) of the incident page, LID, runbook and war room, where known."""
    result = [("Incident", incident.incident_url)]
    if incident.lid_url:
        result.append(("LID", incident.lid_url))
    if incident.runbook_url:
        result.append(("Runbook", incident.runbook_url))
    if incident.war_room_url:
        result.append(("War room", incident.war_room_url))
    return result


def text_heading(event: str) -> str:
    """Heading for ``Notification.text`` under ``event``."""
    return TEXT_HEADINGS.get(event, "Note")


def is_web_url(url: str) -> bool:
    """True for absolute http(s) URLs (the only ones rendered as clickable links)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def extra_text(notification: Notification) -> str | None:
    """The notification's own words; for ``resolved`` falls back to the resolution summary."""
    if notification.text:
        return notification.text
    if notification.event == "resolved" and notification.incident.resolution_summary:
        return notification.incident.resolution_summary
    return None


def text_body(notification: Notification) -> str:
    """Plain-text body: summary, facts, the notification text, description, links.

    No control characters but line breaks and tabs."""
    inc = notification.incident
    lines = [summary_line(notification), "", f"Title: {one_line(inc.title)}"]
    lines += [f"{label}: {value}" for label, value in facts(notification)]
    if inc.war_room_channel_id and not inc.war_room_url:
        lines.append(f"War room channel: {inc.war_room_channel_id}")
    extra = strip_control(extra_text(notification))
    if extra:
        lines += ["", f"{text_heading(notification.event)}:", extra]
    if inc.description:
        lines += ["", "Description:", strip_control(inc.description)]
    lines += ["", "Links:"]
    lines += [f"- {label}: {url}" for label, url in links(inc)]
    return "\n".join(lines) + "\n"


def _html_text(text: str) -> str:
    return html.escape(text).replace("\n", "<br>\n")


def _html_link(label: str, url: str) -> str:
    if is_web_url(url):
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'
    return f"{html.escape(label)}: {html.escape(url)}"


def html_body(notification: Notification) -> str:
    """HTML body with the same content as :func:`text_body`; all values escaped."""
    inc = notification.incident
    color = f"#{severity_color(inc.severity):06X}"
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{html.escape(label)}</th>'
        f"<td>{html.escape(value)}</td></tr>\n"
        for label, value in [("Title", one_line(inc.title)), *facts(notification)]
    )
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"></head>',
        '<body style="font-family:sans-serif">',
        f'<div style="border-left:6px solid {color};padding-left:12px">',
        f"<h2>{html.escape(summary_line(notification))}</h2>",
        f"<table>\n{rows}</table>",
    ]
    if inc.war_room_channel_id and not inc.war_room_url:
        parts.append(f"<p>War room channel: {html.escape(inc.war_room_channel_id)}</p>")
    extra = extra_text(notification)
    if extra:
        parts.append(
            f"<h3>{html.escape(text_heading(notification.event))}</h3><p>{_html_text(extra)}</p>"
        )
    if inc.description:
        parts.append(f"<h3>Description</h3><p>{_html_text(inc.description)}</p>")
    items = "".join(f"<li>{_html_link(label, url)}</li>" for label, url in links(inc))
    parts += [f"<h3>Links</h3><ul>{items}</ul>", "</div>", "</body></html>"]
    return "\n".join(parts) + "\n"


def sms_text(notification: Notification, limit: int = SMS_LIMIT) -> str:
    """A pager text of at most ``limit`` characters, without emoji, cut with ``...``.

    ``"[SEV1] INC-A1B2C3 created: <title> - <service> <incident url>"``: the title is cut
    first; the incident URL is kept only when it leaves room for a readable title; the
    notification text (e.g. resolution summary) is appended when space remains.
    """
    inc = notification.incident
    title = one_line(inc.title)
    head = one_line(
        f"[{severity_short(inc.severity)}] {inc.short_id} {event_label(notification.event)}:"
    )
    head += " "
    tail = f" - {one_line(inc.service_name)}"
    url = f" {one_line(inc.incident_url)}" if inc.incident_url else ""
    min_title = 24
    if len(head) + len(tail) + len(url) + min(len(title), min_title) > limit:
        url = ""
    room = limit - len(head) - len(tail) - len(url)
    core = head + truncate(title, room, SMS_ELLIPSIS) + tail
    extra = one_line(extra_text(notification))
    if extra:
        extra_room = limit - len(core) - len(url) - 3
        if extra_room >= 16:
            core += " | " + truncate(extra, extra_room, SMS_ELLIPSIS)
    return truncate(core + url, limit, SMS_ELLIPSIS)


def incident_dict(incident: IncidentView) -> dict[str, Any]:
    """Every ``IncidentView`` field as JSON-ready values (datetimes as ISO 8601 UTC)."""
    result: dict[str, Any] = {}
    for f in dataclass_fields(incident):
        value = getattr(incident, f.name)
        result[f.name] = iso_utc(value) if isinstance(value, datetime) else value
    return result


def template_fields(notification: Notification, idempotency_key: str = "") -> dict[str, str]:
    """Flat string fields describing a notification (used by custom webhook templates)."""
    inc = notification.incident
    return {
        "event": notification.event,
        "event_label": event_label(notification.event),
        "summary": summary_line(notification, emoji=False),
        "summary_emoji": summary_line(notification),
        "incident_id": str(inc.id),
        "short_id": inc.short_id,
        "title": inc.title,
        "description": inc.description,
        "severity": inc.severity,
        "severity_short": severity_short(inc.severity),
        "severity_rank": str(SEVERITY_RANK.get(inc.severity, 0)),
        "severity_color": f"#{severity_color(inc.severity):06X}",
        "emoji": inc.emoji,
        "status": inc.status,
        "service": inc.service_name,
        "team": inc.team_name,
        "lead": lead_display(inc),
        "lead_email": inc.lead_email or "",
        "incident_url": inc.incident_url,
        "lid_url": inc.lid_url or "",
        "runbook_url": inc.runbook_url or "",
        "war_room_url": inc.war_room_url or "",
        "war_room_channel_id": inc.war_room_channel_id or "",
        "resolution_summary": inc.resolution_summary or "",
        "created_at": iso_utc(inc.created_at),
        "text": extra_text(notification) or "",
        "actor": notification.actor or "",
        "idempotency_key": idempotency_key,
        "body": text_body(notification),
        "sms": sms_text(notification),
    }


# --- config helpers shared by the provider config models ---------------------------------


def validate_http_url(value: str) -> str:
    """Return ``value`` when it is an absolute http(s) URL; ValueError otherwise.

    The error never repeats the value: webhook URLs carry their secret in the path.
    """
    if not is_web_url(value.strip()) or any(c.isspace() for c in value.strip()):
        raise ValueError("must be an absolute http:// or https:// URL")
    return value.strip()


class WebhookUrlConfig(ProviderConfig):
    """Config of a provider that posts to one secret webhook URL (Discord, Teams)."""

    model_config = ConfigDict(hide_input_in_errors=True)  # inputs may be secrets

    webhook_url: SecretStr

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        return SecretStr(validate_http_url(value.get_secret_value()))
