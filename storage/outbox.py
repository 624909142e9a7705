"""The transactional outbox: rows written with the state change, performed later.

``enqueue`` is idempotent on ``idempotency_key``: enqueuing the same step twice keeps the
first row. ``claim_due`` hands rows to exactly one worker (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; on SQLite the ``BEGIN IMMEDIATE`` transaction serialises claimers).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from storage.models import OutboxItem, utcnow

OPEN_STATES = ("pending", "in_flight", "failed")


def enqueue(
    session: Session,
    *,
    kind: str,
    idempotency_key: str,
    incident_id: int | None = None,
    event: str | None = None,
    provider_name: str | None = None,
    recipient_kind: str | None = None,
    recipient: str | None = None,
    payload: dict[str, Any] | None = None,
    not_before: datetime | None = None,
) -> OutboxItem:
    """Add a step unless a row with this idempotency key exists; returns the row."""
    existing = session.scalar(
        select(OutboxItem).where(OutboxItem.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing
    item = OutboxItem(
        kind=kind,
        idempotency_key=idempotency_key,
        incident_id=incident_id,
        event=event,
        provider_name=provider_name,
        recipient_kind=recipient_kind,
        recipient=recipient,
        payload=payload or {},
        next_attempt_at=not_before or utcnow(),
        state="pending",
    )
    session.add(item)
    session.flush()
    return item


def claim_due(
    session: Session, *, now: datetime, limit: int, lease_seconds: float
) -> list[OutboxItem]:
    """Mark up to ``limit`` due rows ``in_flight`` with a lease and return them.

    Due: pending/failed with ``next_attempt_at <= now``, or in_flight whose lease expired
    (its worker died). The caller must commit promptly.
    """
    due = or_(
        and_(OutboxItem.state.in_(("pending", "failed")), OutboxItem.next_attempt_at <= now),
        and_(OutboxItem.state == "in_flight", OutboxItem.lease_until < now),
    )
    query = (
        select(OutboxItem)
        .where(due)
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    items = list(session.scalars(query))
    for item in items:
        item.state = "in_flight"
        item.lease_until = now + timedelta(seconds=lease_seconds)
        item.attempts += 1
    session.flush()
    return items


def next_due_at(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(OutboxItem.next_attempt_at)).where(
            OutboxItem.state.in_(("pending", "failed"))
        )
    )


def for_incident(
    session: Session, *, incident_id: int, kind: str | None = None
) -> list[OutboxItem]:
    query = select(OutboxItem).where(OutboxItem.incident_id == incident_id)
    if kind:
        query = query.where(OutboxItem.kind == kind)
    return list(session.scalars(query.order_by(OutboxItem.id)))


def first_delivery(
    session: Session, *, incident_id: int, provider_name: str, recipient_kind: str, recipient: str
) -> OutboxItem | None:
    """The earliest completed delivery to this recipient for this incident (its anchor)."""
    return session.scalar(
        select(OutboxItem)
        .where(
            OutboxItem.incident_id == incident_id,
            OutboxItem.kind == "notify",
            OutboxItem.provider_name == provider_name,
            OutboxItem.recipient_kind == recipient_kind,
            OutboxItem.recipient == recipient,
            OutboxItem.state == "done",
        )
        .order_by(OutboxItem.id)
        .limit(1)
    )


def depth(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state))
    return {str(row[0]): int(row[1]) for row in rows}


def earlier_unfinished(
    session: Session,
    *,
    item: OutboxItem,
    kind: str,
    recipient_kind: str | None,
    recipient: str | None,
) -> bool:
    """Whether a row of ``kind`` for the same incident and recipient, enqueued before
    ``item``, is still to be done (pending, failed-and-retrying or in flight)."""
    found = session.scalar(
        select(OutboxItem.id)
        .where(
            OutboxItem.incident_id == item.incident_id,
            OutboxItem.kind == kind,
            OutboxItem.recipient_kind == recipient_kind,
            OutboxItem.recipient == recipient,
            OutboxItem.id < item.id,
            OutboxItem.state.in_(OPEN_STATES),
        )
        .limit(1)
    )
    return found is not None
