"""📌 in a war room: the reacted-to message joins the timeline at its own time.

The reaction event carries the channel, the message ``ts`` and its author, not the text:
the event is written at once (``external_key`` ``pin:<channel>:<ts>``, so a second 📌
records nothing) and the text is fetched by the ``pin_fetch`` outbox step.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.actor import Actor
from bot.flows.slack_steps import enqueue_pin_fetch
from bot.outbox_kinds import OutboxKind, refresh_key
from storage import catalog
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.models import Incident, TimelineEvent


def pin_key(channel: str, ts: str) -> str:
    return f"pin:{channel}:{ts}"


def ts_to_datetime(ts: str) -> datetime:
    """A Slack message timestamp (``"1712345678.000200"``) as an aware UTC datetime."""
    return datetime.fromtimestamp(float(ts), UTC)


def pin_message(
    session: Session,
    *,
    incident: Incident,
    channel: str,
    ts: str,
    author: str | None,
    actor: Actor,
    request_key: str | None = None,
) -> TimelineEvent | None:
    """Record the message; None when it is already in the timeline. ``request_key``
    identifies this pinning (the Slack ``event_id``)."""
    try:
        at = ts_to_datetime(ts)
    except (TypeError, ValueError):
        return None
    person = catalog.get_person(session, ref=author) if author else None
    event = incident_store.add_event(
        session,
        incident=incident,
        type="PINNED",
        message="📌 Pinned message (fetching its text)",
        actor=person.label if person else author,
        source=actor.origin,
        data={"channel": channel, "ts": ts, "author": author, "pinned_by": actor.label},
        at=at,
        external_key=pin_key(channel, ts),
    )
    if event is None:
        return None
    enqueue_pin_fetch(
        session, incident=incident, event=event, request_key=request_key or uuid.uuid4().hex
    )
    return event


def unpin_message(session: Session, *, incident: Incident, channel: str, ts: str) -> bool:
    """Remove the pinned message from the timeline; False when it was not there."""
    event = session.scalar(
        select(TimelineEvent).where(TimelineEvent.external_key == pin_key(channel, ts))
    )
    if event is None or event.incident_id != incident.id:
        return False
    event_id = event.id
    session.delete(event)
    outbox_store.enqueue(
        session,
        kind=OutboxKind.REFRESH,
        incident_id=incident.id,
        idempotency_key=refresh_key(incident.id, f"unpin{event_id}"),
    )
    return True
