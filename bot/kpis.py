"""Incident KPIs: counts and response times (SPEC §7 ``GET /api/v1/metrics/``).

Per incident (seconds; an incident missing either end is left out of that measure):

* MTTD, time to detect: ``created_at - detected_at`` (only incidents with ``detected_at``,
  e.g. those opened by an alert, whose ``startsAt`` is the detection time);
* MTTA, time to acknowledge: ``acknowledged_at - created_at``;
* MTTR, time to resolve: ``resolved_at - created_at``.

Each measure gives ``count``, ``mean``, ``p50`` and ``p90`` (linear interpolation between
closest ranks; None without data). Incidents are selected by ``created_at`` in
``[since, until)``; private incidents are counted (the numbers reveal nothing about them).
``by`` groups the same numbers by ``severity``, ``service``, ``team``, or period of
creation (``day``, ``week`` (ISO, e.g. ``2024-W18``), ``month``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.enums import SEVERITIES
from storage.models import Incident, Service, Team

STATUSES = ("TRIGGERED", "ACKNOWLEDGED", "MITIGATED", "RESOLVED")
GROUPINGS = ("severity", "service", "team", "day", "week", "month")


@dataclass(frozen=True)
class _Row:
    status: str
    severity: str
    service: str
    team: str | None
    created_at: datetime
    detected_at: datetime | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` quantile of ``values`` (linear interpolation), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_stats(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 3) if values else None,
        "p50": _round(percentile(values, 0.5)),
        "p90": _round(percentile(values, 0.9)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def summarise(rows: list[_Row]) -> dict[str, Any]:
    by_status = dict.fromkeys(STATUSES, 0)
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
        by_severity[row.severity] = by_severity.get(row.severity, 0) + 1
    return {
        "total": len(rows),
        "open": sum(1 for row in rows if row.status != "RESOLVED"),
        "by_status": by_status,
        "by_severity": by_severity,
        "mttd": duration_stats(_present(_seconds(r.detected_at, r.created_at) for r in rows)),
        "mtta": duration_stats(_present(_seconds(r.created_at, r.acknowledged_at) for r in rows)),
        "mttr": duration_stats(_present(_seconds(r.created_at, r.resolved_at) for r in rows)),
    }


_GROUP_KEY: dict[str, Callable[[_Row], str]] = {
    "severity": lambda r: r.severity,
    "service": lambda r: r.service,
    "team": lambda r: r.team or "(none)",
    "day": lambda r: r.created_at.date().isoformat(),
    "week": lambda r: "{}-W{:02d}".format(*r.created_at.isocalendar()[:2]),
    "month": lambda r: r.created_at.strftime("%Y-%m"),
}


def compute(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """The KPIs of incidents created in ``[since, until)``, optionally grouped ``by`` one
    of ``GROUPINGS`` (ValueError otherwise)."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    query = (
        select(
            Incident.status,
            Incident.severity,
            Service.name,
            Team.name,
            Incident.created_at,
            Incident.detected_at,
            Incident.acknowledged_at,
            Incident.resolved_at,
        )
        .join(Service, Incident.service_id == Service.id)
        .outerjoin(Team, Incident.team_id == Team.id)
    )
    if since is not None:
        query = query.where(Incident.created_at >= since)
    if until is not None:
        query = query.where(Incident.created_at < until)
    rows = [_Row(*values) for values in session.execute(query)]
    result = summarise(rows)
    result.update(
        {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "by": by,
            "groups": None,
        }
    )
    if by is not None:
        groups: dict[str, list[_Row]] = {}
        for row in rows:
            groups.setdefault(_GROUP_KEY[by](row), []).append(row)
        result["groups"] = {key: summarise(groups[key]) for key in sorted(groups)}
    return result
