"""Follow-up actions of an incident, tracked in IMAS (issue 15).

``add`` runs in the caller's transaction (``bot.flows.incidents.add_followup`` owns it and
applies the access policy): it validates, writes the ``followups`` row and a
``FOLLOWUP_ADDED`` timeline event, and then what every change does (Slack surfaces
refreshed, the LID synced). The post-mortem lists them under "Action items".
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.actor import Actor
from bot.domain.errors import ConflictError, InputError, NotFoundError
from bot.flows import lifecycle
from bot.runtime import Runtime
from storage import catalog
from storage import incidents as incident_store
from storage.models import FollowUp, Incident

MAX_TITLE = 500


def parse_due(text: str | None) -> date | None:
    """``YYYY-MM-DD`` (None for empty). InputError for anything else."""
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"Due date {text.strip()!r} is not a date (YYYY-MM-DD).", field="due"
        ) from None


def add(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    title: str,
    actor: Actor,
    owner_ref: str | None = None,
    due: date | None = None,
) -> FollowUp:
    title = " ".join((title or "").split())
    if not title:
        raise InputError("A follow-up needs a text.", field="title")
    if len(title) > MAX_TITLE:
        raise InputError(f"A follow-up text is at most {MAX_TITLE} characters.", field="title")
    owner = catalog.ensure_person(session, ref=owner_ref.strip()) if owner_ref else None
    item = FollowUp(
        incident_id=incident.id,
        title=title,
        owner_id=owner.id if owner else None,
        due_date=due,
        state="open",
        created_by=actor.label,
    )
    session.add(item)
    session.flush()
    details = [f"owner {owner.label}" if owner else None, f"due {due.isoformat()}" if due else None]
    extra = ", ".join(d for d in details if d)
    event = incident_store.add_event(
        session,
        incident=incident,
        type="FOLLOWUP_ADDED",
        message=f"Follow-up #{item.id}: {title}" + (f" ({extra})" if extra else ""),
        actor=actor.label,
        source=actor.origin,
        data={"followup": item.id},
    )
    session.flush()
    lifecycle._after_change(session, rt, incident, event, None, actor)
    return item


def of_incident(session: Session, incident_id: int) -> list[FollowUp]:
    return list(
        session.scalars(
            select(FollowUp).where(FollowUp.incident_id == incident_id).order_by(FollowUp.id)
        )
    )


def followup_json(item: FollowUp) -> dict[str, object]:
    return {
        "id": item.id,
        "title": item.title,
        "owner": item.owner.label if item.owner else None,
        "due_date": item.due_date.isoformat() if item.due_date else None,
        "state": item.state,
        "created_by": item.created_by,
        "created_at": item.created_at.isoformat() if item.created_at else None,
    }


def complete(
    session: Session, rt: Runtime, *, incident: Incident, followup_id: int, actor: Actor
) -> FollowUp:
    """Mark follow-up ``followup_id`` of ``incident`` done (ConflictError if it is)."""
    item = session.get(FollowUp, followup_id)
    if item is None or item.incident_id != incident.id:
        raise NotFoundError(
            f"No follow-up #{followup_id} on {incident.short_id}.", field="followup"
        )
    if item.state == "done":
        raise ConflictError(f"Follow-up #{followup_id} is already done.")
    item.state = "done"
    item.done_at = rt.clock()
    event = incident_store.add_event(
        session,
        incident=incident,
        type="FOLLOWUP_DONE",
        message=f"Follow-up #{item.id} done: {item.title}",
        actor=actor.label,
        source=actor.origin,
        data={"followup": item.id},
    )
    session.flush()
    lifecycle._after_change(session, rt, incident, event, None, actor)
    return item
