"""The ``workers`` table: each outbox process registers, heartbeats and leaves (issue 11).

A row ``in_flight`` whose ``claimed_by`` worker stopped heartbeating is claimed again by
any live process (see ``storage.outbox.claim_due``) instead of waiting for its lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from storage.models import Worker


def register(session: Session, *, worker_id: str, host: str, pid: int, now: datetime) -> None:
    session.merge(Worker(id=worker_id, host=host[:255], pid=pid, started_at=now, heartbeat_at=now))


def heartbeat(session: Session, *, worker_id: str, host: str, pid: int, now: datetime) -> None:
    """Refresh this worker's heartbeat (re-registering it if its row was removed)."""
    result = session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        register(session, worker_id=worker_id, host=host, pid=pid, now=now)


def leave(session: Session, *, worker_id: str) -> None:
    session.execute(delete(Worker).where(Worker.id == worker_id))


def forget_dead(session: Session, *, now: datetime, older_than: timedelta) -> int:
    """Remove rows of workers silent for ``older_than`` (their rows were reclaimed long
    ago: a claim needs no worker row to see that its claimant is gone)."""
    result = session.execute(delete(Worker).where(Worker.heartbeat_at < now - older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
