"""Alerts received by webhook, and the alert rules. The caller owns the transaction.

An ``Alert`` row is one alert *occurrence*, keyed by ``(source, fingerprint)``: repeats of
the same occurrence are folded into it (``count``, ``last_seen_at``) by the alert flow.
``incident_key`` groups the alerts that share one incident (see
``bot.alert_rules.incident_key``); ``incident_id`` links the alert to that incident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from storage.incidents import PrivateViewer, involves
from storage.models import Alert, AlertRule, Incident

ALERT_STATUSES = ("firing", "resolved")


def list_rules(session: Session) -> list[AlertRule]:
    """Every configured alert rule, in configuration order (``position``, then name)."""
    return list(session.scalars(select(AlertRule).order_by(AlertRule.position, AlertRule.name)))


def latest_for_fingerprint(session: Session, *, source: str, fingerprint: str) -> Alert | None:
    """The most recently seen alert with this ``(source, fingerprint)``, if any."""
    return session.scalar(
        select(Alert)
        .where(Alert.source == source, Alert.fingerprint == fingerprint)
        .order_by(Alert.last_seen_at.desc(), Alert.id.desc())
        .limit(1)
    )


def latest_for_fingerprints(
    session: Session, *, source: str, fingerprints: Iterable[str]
) -> dict[str, Alert]:
    """``latest_for_fingerprint`` for many fingerprints in one query per 500."""
    wanted = sorted(set(fingerprints))
    found: dict[str, Alert] = {}
    for start in range(0, len(wanted), 500):
        rows = session.scalars(
            select(Alert)
            .where(Alert.source == source, Alert.fingerprint.in_(wanted[start : start + 500]))
            .order_by(Alert.last_seen_at, Alert.id)
        )
        for row in rows:
            found[row.fingerprint] = row  # ordered: the last one wins
    return found


def open_incident_for_key(session: Session, *, key: str) -> Incident | None:
    """The newest open (not RESOLVED) incident that an alert with ``incident_key == key``
    is linked to, if any."""
    return session.scalar(
        select(Incident)
        .join(Alert, Alert.incident_id == Incident.id)
        .where(Alert.incident_key == key, Incident.status != "RESOLVED")
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(1)
    )


def firing_count(session: Session, *, incident_id: int) -> int:
    """How many alerts linked to the incident are still firing."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Alert)
            .where(Alert.incident_id == incident_id, Alert.status == "firing")
        )
        or 0
    )


def lock_keys(session: Session, *, keys: Iterable[str]) -> None:
    """Serialise concurrent ingestion of the same alerts (PostgreSQL only).

    Takes one transaction-scoped advisory lock per distinct key, in a fixed order (so two
    transactions never deadlock on each other); the locks are released at commit or
    rollback. On SQLite every write transaction is already serialised (``BEGIN
    IMMEDIATE``), so this is a no-op there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({_lock_id(key) for key in keys})
    if ids:  # one round trip; the sorted subquery fixes the order the locks are taken in
        session.execute(
            text(
                "SELECT pg_advisory_xact_lock(id) FROM "
                "(SELECT unnest(CAST(:ids AS bigint[])) AS id ORDER BY id) AS wanted"
            ),
            {"ids": ids},
        )


def _lock_id(key: str) -> int:
    digest = hashlib.sha256(("imas-alert:" + key).encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class AlertFilter:
    status: str | None = None
    source: str | None = None
    incident_id: int | None = None
    # None: every alert. Otherwise alerts of private incidents are kept only when the
    # incident involves this viewer (see storage.incidents.involves).
    private_visible_to: PrivateViewer | None = None


def list_alerts(
    session: Session, *, filters: AlertFilter | None = None, offset: int = 0, limit: int = 50
) -> tuple[int, list[tuple[Alert, str | None]]]:
    """Matching alerts, most recently seen first, each with its incident's short id (or
    None), and the total count before paging."""
    f = filters or AlertFilter()
    query = select(Alert)
    if f.status:
        query = query.where(Alert.status == f.status)
    if f.source:
        query = query.where(Alert.source == f.source)
    if f.incident_id is not None:
        query = query.where(Alert.incident_id == f.incident_id)
    if f.private_visible_to is not None:
        hidden = select(Incident.id).where(
            Incident.private.is_(True), ~involves(f.private_visible_to)
        )
        query = query.where(or_(Alert.incident_id.is_(None), ~Alert.incident_id.in_(hidden)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.add_columns(Incident.short_id)
        .outerjoin(Incident, Alert.incident_id == Incident.id)
        .order_by(Alert.last_seen_at.desc(), Alert.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return total, [(alert, short_id) for alert, short_id in rows]
