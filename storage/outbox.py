"""The transactional outbox: rows written with the state change, performed later.

``enqueue`` is idempotent on ``idempotency_key``: enqueuing the same step twice keeps the
first row. ``claim_due`` hands rows to exactly one worker (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; on SQLite the ``BEGIN IMMEDIATE`` transaction serialises claimers) with a
fencing token (``claim_token``): ``renew_leases`` and ``fence`` act only for the claimant
whose token still matches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import OutboxItem, Worker, utcnow

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
    session: Session,
    *,
    now: datetime,
    limit: int,
    lease_seconds: float,
    worker_id: str | None = None,
    live_since: datetime | None = None,
    exclude: Callable[[], ColumnElement[bool] | None] | None = None,
    accept: Callable[[OutboxItem], bool] | None = None,
) -> list[OutboxItem]:
    """Mark up to ``limit`` due rows ``in_flight`` with a lease and return them.

    Due: pending/failed with ``next_attempt_at <= now``; in_flight whose lease expired
    (its worker died without a trace); in_flight claimed by a worker whose heartbeat is
    older than ``live_since`` (its process died: reclaimed without waiting for the lease).
    Each claim increments ``claim_token`` (the fencing token) and records ``claimed_by``.
    ``exclude`` adds a SQL filter (providers at their concurrency budget), ``accept``
    picks among the candidates (the caller's bulkhead); rows it refuses stay due.
    The caller must commit promptly.
    """
    # A worker knows it is alive: it never reclaims a row it is running itself (its lease
    # may look expired after a clock jump or a late renewal; it is still being run).
    not_ours = (
        or_(OutboxItem.claimed_by.is_(None), OutboxItem.claimed_by != worker_id)
        if worker_id is not None
        else None
    )
    expired = [OutboxItem.state == "in_flight", OutboxItem.lease_until < now]
    if not_ours is not None:
        expired.append(not_ours)
    conditions = [
        and_(OutboxItem.state.in_(("pending", "failed")), OutboxItem.next_attempt_at <= now),
        and_(*expired),
    ]
    if live_since is not None:
        alive = (
            select(Worker.id)
            .where(Worker.id == OutboxItem.claimed_by, Worker.heartbeat_at >= live_since)
            .exists()
        )
        dead_claim = [OutboxItem.state == "in_flight", OutboxItem.claimed_by.is_not(None), ~alive]
        if worker_id is not None:
            dead_claim.append(OutboxItem.claimed_by != worker_id)
        conditions.append(and_(*dead_claim))
    query = select(OutboxItem).where(or_(*conditions))
    extra = exclude() if exclude is not None else None
    if extra is not None:
        query = query.where(extra)
    query = query.order_by(OutboxItem.next_attempt_at, OutboxItem.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    items = [item for item in session.scalars(query) if accept is None or accept(item)]
    for item in items:
        item.state = "in_flight"
        item.lease_until = now + timedelta(seconds=lease_seconds)
        item.attempts += 1
        item.claim_token = (item.claim_token or 0) + 1
        item.claimed_by = worker_id
        if item.first_claimed_at is None:
            item.first_claimed_at = now
    session.flush()
    return items


def renew_leases(
    session: Session, *, held: dict[int, int], now: datetime, lease_seconds: float
) -> set[int]:
    """Extend the lease of each row ``id -> claim_token`` still held; returns the ids
    whose lease was lost (claimed again by someone else, or deleted)."""
    lost: set[int] = set()
    until = now + timedelta(seconds=lease_seconds)
    for item_id, token in held.items():
        result = session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id == item_id,
                OutboxItem.claim_token == token,
                OutboxItem.state == "in_flight",
            )
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            current = session.scalar(select(OutboxItem.claim_token).where(OutboxItem.id == item_id))
            if current != token:  # same token: this claimant just finished it, not lost
                lost.add(item_id)
    return lost


def fence(session: Session, *, item_id: int, claim_token: int) -> OutboxItem | None:
    """The row, locked for this transaction, if ``claim_token`` still holds it; else None.

    A conditional UPDATE (``WHERE id = ? AND claim_token = ? AND state = 'in_flight'``)
    takes the row lock, so a claimant whose lease was lost records nothing."""
    result = session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.id == item_id,
            OutboxItem.claim_token == claim_token,
            OutboxItem.state == "in_flight",
        )
        .values(lease_until=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.get(OutboxItem, item_id, populate_existing=True)
    return row


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
