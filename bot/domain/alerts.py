"""What an alert source's webhook payload parses into: the value type the webhook
parsers (``handlers/webhooks/parsers.py``) produce and the alert flow consumes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

AlertStatus = Literal["firing", "resolved"]

SOURCES: Final = ("alertmanager", "grafana", "datadog", "sentry", "custom")
"""The alert sources IMAS has a webhook for (``/webhooks/<source>/``)."""


@dataclass(frozen=True)
class ParsedAlert:
    """One alert, normalised across sources.

    ``status`` is ``"firing"`` or ``"resolved"``. ``starts_at``/``ends_at`` are aware UTC
    datetimes or ``None``; ``ends_at`` is only set on resolved alerts (Alertmanager's zero
    time ``0001-01-01T00:00:00Z`` and the provisional ``endsAt`` of a firing alert both
    give ``None``). ``severity_label`` is the raw word from the payload (``critical``,
    ``P2``, ``error``...), mapped to an IMAS severity by ``bot.alert_rules``.
    ``service_hint`` is the tool's idea of the service (a label, a tag, a Sentry project
    slug), which an alert rule may override. ``group_key`` is the sender's notification
    group (Alertmanager/Grafana ``groupKey``), else ``None``. ``raw`` is the alert's own
    JSON object (for single-alert payloads, the whole body). Instances are not hashable
    (they hold dicts); treat them as immutable.
    """

    source: str
    fingerprint: str
    status: AlertStatus
    name: str
    summary: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    severity_label: str | None
    service_hint: str | None
    group_key: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    url: str | None
    raw: dict[str, Any]
