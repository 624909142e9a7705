"""Jinja2 rendering for the dashboard: the environment (templates shipped in the package,
autoescaped), the filters the templates use, and the security headers of every page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

# No inline script or style anywhere: every asset comes from /dashboard/static/.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def parse_time(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_text(value: object) -> str:
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def human_duration(seconds: float | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``4 min 10 s``, ``12 s``; ``—`` without a value."""
    if seconds is None:
        return "—"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def between(start: object, end: object) -> float | None:
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


def safe_url(value: object) -> str:
    """``value`` when it is an http(s) URL, else "" (no ``javascript:`` or ``data:`` links
    from configuration or provider answers)."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else ""


# Only what IMAS itself writes into timeline messages: channel and user references and
# labelled links. Anything else (a note with "<b>" in it) is left as typed.
_SLACK_REF = re.compile(r"<([#@][CGUW][A-Z0-9]{2,})(?:\|([^<>]*))?>")
_SLACK_LINK = re.compile(r"<(https?://[^<>|\s]+)\|([^<>]+)>")


def slack_plain(value: object) -> str:
    """Slack references in a timeline message as plain text for the page: ``<#C123>`` ->
    ``#C123``, ``<@U123|ann>`` -> ``@ann``, ``<https://x|label>`` -> ``label``."""
    text = _SLACK_REF.sub(
        lambda m: m.group(1)[0] + m.group(2) if m.group(2) else m.group(1), str(value or "")
    )
    return _SLACK_LINK.sub(lambda m: m.group(2), text)


def severity_class(severity: object) -> str:
    return "sev-" + str(severity or "").split("_", 1)[0].lower()


def status_class(status: object) -> str:
    return "status-" + str(status or "").lower()


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("handlers.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc=utc_text,
        duration=human_duration,
        sev_class=severity_class,
        status_class=status_class,
        safe_url=safe_url,
        slack_plain=slack_plain,
    )
    env.globals.update(between=between)
    return env


ENV = _environment()


def render(template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    body = ENV.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=dict(PAGE_HEADERS))
