"""What follows a change to an incident, besides notifications and refreshes: its
scheduled tasks, the role holder's DM, the war-room post of a note or status update.

``lifecycle`` calls :func:`after_change` in the change's transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.domain.enums import INCIDENT_ROLES, ROLE_HELP, IncidentRole
from bot.flows import paging, scheduled
from bot.flows.slack_steps import WAR_ROOM, enqueue_post
from bot.runtime import Runtime
from providers.slack_blocks import note_text, status_update_text
from storage.models import Incident, TimelineEvent


def after_change(
    session: Session, rt: Runtime, *, incident: Incident, event: TimelineEvent | None
) -> None:
    scheduled.sync_tasks(session, rt, incident=incident)
    if event is None:
        return
    actor = event.actor or "someone"
    if event.type == "ROLE_ASSIGNED":
        role = str((event.data or {}).get("role") or "")
        help_text = ROLE_HELP.get(IncidentRole(role), "") if role in INCIDENT_ROLES else ""
        paging.role_dm(session, rt, incident=incident, event=event, help_text=help_text)
    elif event.type == "NOTE":
        enqueue_post(
            session,
            incident=incident,
            key=f"war_room_post:{event.id}",
            channel=WAR_ROOM,
            text=note_text(actor, event.message),
        )
    elif event.type == "STATUS_UPDATE":
        minutes = (event.data or {}).get("next_update_minutes")
        scheduled.status_update_posted(
            session,
            rt,
            incident=incident,
            next_update_minutes=int(minutes) if minutes else None,
        )
        enqueue_post(
            session,
            incident=incident,
            key=f"war_room_post:{event.id}",
            channel=WAR_ROOM,
            text=status_update_text(actor, event.message),
        )
