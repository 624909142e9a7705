"""Audit rows for acts on incidents and configuration, written by the flows.

``record`` adds the row in the caller's transaction, so a rolled-back change leaves no
audit row. ``record_denial`` writes a refused write attempt in a transaction of its own
(the refused act's transaction is rolled back, and writes nothing else).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.domain.actor import Actor
from bot.runtime import Runtime
from storage import audit as audit_store


def record(
    session: Session,
    actor: Actor,
    *,
    action: str,
    target_type: str,
    target: str | None,
    changes: dict[str, Any] | None = None,
    outcome: str = "ok",
    detail: str | None = None,
) -> None:
    audit_store.record(
        session,
        actor=actor.label,
        actor_kind=actor.kind,
        actor_ref=actor.identity,
        door=actor.door.value,
        action=action,
        target_type=target_type,
        target=target,
        changes=changes or None,
        outcome=outcome,
        detail=detail,
        request_id=actor.request_id,
    )


def record_denial(
    rt: Runtime, actor: Actor, *, action: str, target_type: str, target: str | None, detail: str
) -> None:
    with rt.transaction() as session:
        record(
            session,
            actor,
            action=action,
            target_type=target_type,
            target=target,
            outcome="denied",
            detail=detail,
        )
