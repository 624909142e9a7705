"""The incident document's people: who gets writer access to the LID (issue 15).

At resolve, the post-mortem draft (``bot.postmortem``) is written into the document.

The lead, the declarer and every role holder are given writer access by e-mail, one
``lid_share`` outbox step per person (``bot.steps.lid_share_step`` resolves a Slack user's
e-mail with ``users.info`` and reports a refusal as a timeline warning). Called in the
transaction of the declaration and of every later change, so a new lead or role holder
is shared with as soon as they are named; the idempotency key makes repeats free.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.outbox_kinds import OutboxKind, lid_postmortem_key, lid_share_key
from bot.runtime import Runtime
from storage import outbox as outbox_store
from storage.models import Incident, TimelineEvent


def people_of(incident: Incident) -> list[int]:
    """Person ids with a claim to edit the document: lead, declarer, role holders."""
    ids = [incident.lead_id, incident.declared_by_id, *(r.person_id for r in incident.roles)]
    return list(dict.fromkeys(i for i in ids if i is not None))


def enqueue_shares(session: Session, rt: Runtime, *, incident: Incident) -> None:
    """Enqueue a share of the document with every person of ``people_of`` not yet enqueued."""
    if not rt.settings.google_enabled:
        return
    for person_id in people_of(incident):
        outbox_store.enqueue(
            session,
            kind=OutboxKind.LID_SHARE,
            incident_id=incident.id,
            idempotency_key=lid_share_key(incident.id, person_id),
            payload={"person_id": person_id},
        )


def after_change(
    session: Session, rt: Runtime, *, incident: Incident, event: TimelineEvent | None
) -> None:
    """What a change means for the document: share it with new people and, when the change
    resolves the incident, write the post-mortem draft (``lid_postmortem``)."""
    if not rt.settings.google_enabled:
        return
    enqueue_shares(session, rt, incident=incident)
    if (
        event is not None
        and event.type == "STATUS_CHANGE"
        and incident.status == "RESOLVED"
        and (event.data or {}).get("to") == "RESOLVED"
    ):
        outbox_store.enqueue(
            session,
            kind=OutboxKind.LID_POSTMORTEM,
            incident_id=incident.id,
            idempotency_key=lid_postmortem_key(incident.id, f"ev{event.id}"),
        )
