"""``/incident repair``: run again whatever orchestration has not completed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.domain.actor import Actor
from bot.flows import scheduled
from bot.flows.declare import enqueue_orchestration
from bot.outbox_kinds import OutboxKind, refresh_key
from bot.runtime import Runtime
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.models import Incident, OutboxItem, ScheduledTask


@dataclass(frozen=True)
class RepairReport:
    retried: int
    steps: list[OutboxItem]
    tasks: list[ScheduledTask]


def repair(session: Session, rt: Runtime, *, incident: Incident, actor: Actor) -> RepairReport:
    """Enqueue missing steps (idempotent), queue dead ones again from scratch, re-sync the
    scheduled tasks and refresh every Slack surface."""
    now = rt.clock()
    retried = 0
    for item in outbox_store.for_incident(session, incident_id=incident.id):
        if item.state == "dead":
            item.state = "pending"
            item.attempts = 0
            item.next_attempt_at = now
            item.lease_until = None
            retried += 1
    enqueue_orchestration(session, rt, incident=incident, actor=actor)
    scheduled.sync_tasks(session, rt, incident=incident)
    event = incident_store.add_event(
        session,
        incident=incident,
        type="REPAIR",
        message=f"Repair by {actor.label}: {retried} failed step(s) queued again",
        actor=actor.label,
        source=actor.origin,
        data={"retried": retried},
    )
    assert event is not None
    outbox_store.enqueue(
        session,
        kind=OutboxKind.REFRESH,
        incident_id=incident.id,
        idempotency_key=refresh_key(incident.id, f"repair{event.id}"),
    )
    session.flush()
    tasks = [
        task
        for kind in (scheduled.ESCALATION, scheduled.REMINDER, scheduled.ARCHIVE)
        if (task := scheduled.get_task(session, incident_id=incident.id, kind=kind)) is not None
    ]
    return RepairReport(retried, outbox_store.for_incident(session, incident_id=incident.id), tasks)
