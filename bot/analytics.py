"""The dashboard's analytics (SPEC §7 numbers, sliced for charts): incidents per day or
week, MTTA and MTTR p50/p90 per period, a weekday × hour heatmap (UTC), and the services
and teams with the most incidents ("top offenders").

Incidents are selected by ``created_at`` in ``[since, until)`` and optionally by service,
team and severity. Like ``bot.kpis``, private incidents are counted (the numbers reveal
nothing about them); no title is ever returned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.kpis import percentile
from storage.models import Incident, Service, Team

PERIODS = (7, 14, 30, 60, 90)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class Row:
    """One incident: ``created_at`` in UTC, ``ack``/``res`` the seconds to acknowledge and
    to resolve (None when not yet)."""

    severity: str
    service: str
    team: str | None
    created_at: datetime
    ack: float | None
    res: float | None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else max(0.0, (_utc(end) - _utc(start)).total_seconds())


def rows(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    service: str | None = None,
    team: str | None = None,
    severity: str | None = None,
) -> list[Row]:
    query = (
        select(
            Incident.severity,
            Service.name,
            Team.name,
            Incident.created_at,
            Incident.acknowledged_at,
            Incident.resolved_at,
        )
        .join(Service, Incident.service_id == Service.id)
        .outerjoin(Team, Incident.team_id == Team.id)
        .where(Incident.created_at >= since, Incident.created_at < until)
    )
    if service:
        query = query.where(func.lower(Service.name) == service.lower())
    if team:
        query = query.where(func.lower(Team.name) == team.lower())
    if severity:
        query = query.where(Incident.severity == severity)
    found = []
    for severity_, service_, team_, created, acknowledged, resolved in session.execute(query):
        created = _utc(created)
        found.append(
            Row(
                severity_,
                service_,
                team_,
                created,
                _seconds(created, acknowledged),
                _seconds(created, resolved),
            )
        )
    return found


def _stats(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 0.5), "p90": percentile(values, 0.9), "count": len(values)}


def summarise(found: list[Row], *, since: datetime, until: datetime) -> dict[str, Any]:
    """Everything the analytics page draws, from ``found`` (see the module docstring)."""
    start, end = _utc(since), _utc(until)
    span = max(1, (end.date() - start.date()).days + 1)  # calendar days touched
    weekly = span > 32
    per_day = Counter(r.created_at.date() for r in found)
    day_series = [
        (start.date() + timedelta(days=i), per_day.get(start.date() + timedelta(days=i), 0))
        for i in range(span)
    ]

    def bucket(moment: datetime) -> str:
        if weekly:
            year, week, _ = moment.isocalendar()
            return f"{year}-W{week:02d}"
        return moment.date().isoformat()

    buckets = sorted({bucket(datetime.combine(d, datetime.min.time())) for d, _n in day_series})
    mtta: dict[str, list[float]] = {b: [] for b in buckets}
    mttr: dict[str, list[float]] = {b: [] for b in buckets}
    counts: Counter[str] = Counter()
    for r in found:
        key = bucket(r.created_at)
        counts[key] += 1
        if r.ack is not None:
            mtta.setdefault(key, []).append(r.ack)
        if r.res is not None:
            mttr.setdefault(key, []).append(r.res)
    trend = [
        {"period": b, "count": counts.get(b, 0), "mtta": _stats(mtta[b]), "mttr": _stats(mttr[b])}
        for b in sorted(mtta)
    ]
    heat = [[0] * 24 for _ in WEEKDAYS]
    for r in found:
        heat[r.created_at.weekday()][r.created_at.hour] += 1

    def ranking(key: str) -> list[dict[str, Any]]:
        groups: dict[str, list[Row]] = {}
        for r in found:
            groups.setdefault(str(getattr(r, key) or "(none)"), []).append(r)
        ranked = [
            {
                "name": name,
                "count": len(items),
                "critical": sum(1 for r in items if r.severity == "SEV1_CRITICAL"),
                "mtta": _stats([r.ack for r in items if r.ack is not None]),
                "mttr": _stats([r.res for r in items if r.res is not None]),
            }
            for name, items in groups.items()
        ]
        return sorted(ranked, key=lambda g: (-g["count"], g["name"]))

    return {
        "total": len(found),
        "weekly": weekly,
        "per_day": day_series,
        "trend": trend,
        "heatmap": heat,
        "by_service": ranking("service"),
        "by_team": ranking("team"),
        "mtta": _stats([r.ack for r in found if r.ack is not None]),
        "mttr": _stats([r.res for r in found if r.res is not None]),
    }
