"""Changing an incident after its declaration: status, severity, notes, roles.

Each change, in the caller's transaction: validates the transition (ConflictError with a
clear message otherwise), updates the row (timestamps set once), writes a timeline event
with actor and origin, routes the notification event, and enqueues a refresh of every
Slack surface (announcements, war-room summary and topic). Repeating a change that is
already in effect is rejected, so a double-click acts once.
"""

from __future__ import annotations

import functools

from sqlalchemy.orm import Session

from bot import access
from bot.domain.actor import Actor
from bot.domain.enums import INCIDENT_ROLES, SEVERITIES
from bot.domain.errors import ConflictError, InputError, NotFoundError
from bot.flows import followups, lid
from bot.flows.slack_steps import WAR_ROOM, enqueue_post
from bot.outbox_kinds import OutboxKind, lid_sync_key, refresh_key, war_room_key
from bot.router import route_event
from bot.runtime import Runtime
from providers.slack_blocks import state_change_line
from storage import catalog
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.models import Incident, IncidentRole, TimelineEvent

TRANSITIONS = {
    "ACKNOWLEDGED": ("TRIGGERED",),
    "MITIGATED": ("TRIGGERED", "ACKNOWLEDGED"),
    "RESOLVED": ("TRIGGERED", "ACKNOWLEDGED", "MITIGATED"),
    "TRIGGERED": ("RESOLVED",),  # reopen
}
EVENT_FOR_STATUS = {
    "ACKNOWLEDGED": "acknowledged",
    "MITIGATED": "mitigated",
    "RESOLVED": "resolved",
    "TRIGGERED": "reopened",
}
ROLES = INCIDENT_ROLES


def get_or_404(session: Session, ref: str | int) -> Incident:
    incident = incident_store.get_incident(session, ref=ref)
    if incident is None:
        raise NotFoundError(f"No incident {ref}.")
    return incident


def _after_change(
    session: Session,
    rt: Runtime,
    incident: Incident,
    event: TimelineEvent | None,
    notify_event: str | None,
    actor: Actor,
    text: str | None = None,
) -> None:
    key = str(event.id) if event else "change"
    if notify_event:
        route_event(
            session,
            rt,
            incident=incident,
            event=notify_event,
            event_key=f"{notify_event}:{key}",
            text=text,
            actor=actor.label,
        )
    outbox_store.enqueue(
        session,
        kind=OutboxKind.REFRESH,
        incident_id=incident.id,
        idempotency_key=refresh_key(incident.id, f"ev{key}"),
    )
    followups.after_change(session, rt, incident=incident, event=event)
    if event is not None:
        _war_room_line(session, incident=incident, event=event, actor=actor)
    if rt.settings.google_enabled:
        outbox_store.enqueue(
            session,
            kind=OutboxKind.LID_SYNC,
            incident_id=incident.id,
            idempotency_key=lid_sync_key(incident.id, f"ev{key}"),
        )
        lid.after_change(session, rt, incident=incident, event=event)


def _war_room_line(
    session: Session, *, incident: Incident, event: TimelineEvent, actor: Actor
) -> None:
    """One short line in the war room per state change (status, severity, role), so the
    people in the room see every change where they work. The step waits for the room (or
    skips when the incident has none)."""
    data = event.data or {}
    line = functools.partial(
        state_change_line,
        actor_user_id=actor.slack_user_id,
        actor_label=actor.label,
        at=event.at,
    )
    if event.type == "STATUS_CHANGE":
        text = line(kind="status", after=str(data.get("to")))
    elif event.type == "SEVERITY_CHANGE":
        text = line(kind="severity", before=str(data.get("from")), after=str(data.get("to")))
    elif event.type == "ROLE_ASSIGNED":
        holder = catalog.get_person(session, ref=str(data.get("person") or ""))
        text = line(
            kind="role",
            role=str(data.get("role")),
            holder_user_id=holder.slack_user_id if holder else None,
            holder_label=holder.label if holder else str(data.get("person") or "someone"),
        )
    else:
        return
    enqueue_post(
        session, incident=incident, key=f"war_room_line:{event.id}", channel=WAR_ROOM, text=text
    )


def change_status(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    status: str,
    actor: Actor,
    summary: str | None = None,
) -> Incident:
    """Move ``incident`` to ``status``. Raises ConflictError for an invalid transition."""
    if status not in TRANSITIONS:
        raise InputError(f"Unknown status {status!r}.", field="status")
    if incident.status not in TRANSITIONS[status]:
        verb = {
            "ACKNOWLEDGED": "acknowledge",
            "MITIGATED": "mitigate",
            "RESOLVED": "resolve",
            "TRIGGERED": "reopen",
        }[status]
        raise ConflictError(f"{incident.short_id} is {incident.status}: cannot {verb} it.")
    now = rt.clock()
    previous = incident.status
    incident.status = status
    if status == "ACKNOWLEDGED" and incident.acknowledged_at is None:
        incident.acknowledged_at = now
    if status == "MITIGATED" and incident.mitigated_at is None:
        incident.mitigated_at = now
        if incident.acknowledged_at is None:
            incident.acknowledged_at = now
    if status == "RESOLVED":
        incident.resolved_at = now
        if summary:
            incident.resolution_summary = summary.strip()
    if status == "TRIGGERED":
        incident.resolved_at = None
    person = access.person_of(session, actor)
    if status == "ACKNOWLEDGED" and incident.lead_id is None and person is not None:
        incident.lead_id = person.id
    message = f"Status changed from {previous} to {status} by {actor.label}"
    if summary and status == "RESOLVED":
        message += f": {summary.strip()}"
    event = incident_store.add_event(
        session,
        incident=incident,
        type="STATUS_CHANGE",
        message=message,
        actor=actor.label,
        source=actor.origin,
        data={"from": previous, "to": status},
    )
    session.flush()
    _after_change(
        session,
        rt,
        incident,
        event,
        EVENT_FOR_STATUS[status],
        actor,
        text=summary if status == "RESOLVED" else None,
    )
    return incident


def change_severity(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    severity: str,
    actor: Actor,
    reason: str | None = None,
) -> Incident:
    if severity not in SEVERITIES:
        raise InputError(f"Severity must be one of {', '.join(SEVERITIES)}.", field="severity")
    if severity == incident.severity:
        raise ConflictError(f"{incident.short_id} is already {severity}.")
    previous = incident.severity
    incident.severity = severity
    event = incident_store.add_event(
        session,
        incident=incident,
        type="SEVERITY_CHANGE",
        message=f"Severity changed from {previous} to {severity} by {actor.label}"
        + (f": {reason.strip()}" if reason and reason.strip() else ""),
        actor=actor.label,
        source=actor.origin,
        data={"from": previous, "to": severity},
    )
    session.flush()
    _after_change(session, rt, incident, event, "severity_changed", actor)
    from bot.flows.declare import war_room_severities

    if severity in war_room_severities(session) and incident.war_room_channel_id is None:
        outbox_store.enqueue(
            session,
            kind=OutboxKind.WAR_ROOM,
            idempotency_key=war_room_key(incident.id),
            incident_id=incident.id,
        )
    return incident


def add_note(
    session: Session, rt: Runtime, *, incident: Incident, text: str, actor: Actor
) -> TimelineEvent:
    text = (text or "").strip()
    if not text:
        raise InputError("A note needs some text: /incident note <text>.", field="text")
    event = incident_store.add_event(
        session,
        incident=incident,
        type="NOTE",
        message=text,
        actor=actor.label,
        source=actor.origin,
    )
    assert event is not None
    _after_change(session, rt, incident, event, None, actor)
    return event


def post_status_update(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    text: str,
    actor: Actor,
    impact: str | None = None,
    next_update_minutes: int | None = None,
) -> TimelineEvent:
    text = (text or "").strip()
    if not text:
        raise InputError("A status update needs some text.", field="text")
    body = text if not impact else f"{text}\nImpact: {impact.strip()}"
    if next_update_minutes:
        body += f"\nNext update in {next_update_minutes} min"
    event = incident_store.add_event(
        session,
        incident=incident,
        type="STATUS_UPDATE",
        message=body,
        actor=actor.label,
        source=actor.origin,
        data={"next_update_minutes": next_update_minutes},
    )
    assert event is not None
    _after_change(session, rt, incident, event, "status_update", actor, text=body)
    return event


def assign_role(
    session: Session, rt: Runtime, *, incident: Incident, role: str, person_ref: str, actor: Actor
) -> IncidentRole:
    role = role.lower()
    if role not in ROLES:
        raise InputError(f"Unknown role {role!r}; roles: {', '.join(ROLES)}.", field="role")
    person = catalog.ensure_person(session, ref=person_ref)
    existing = next((r for r in incident.roles if r.role == role), None)
    if existing is not None and existing.person_id == person.id:
        raise ConflictError(f"{person.label} is already {role} of {incident.short_id}.")
    if existing is None:
        existing = IncidentRole(incident_id=incident.id, role=role, person_id=person.id)
        incident.roles.append(existing)
    else:
        existing.person_id = person.id
    if role == "lead":
        incident.lead_id = person.id
    event = incident_store.add_event(
        session,
        incident=incident,
        type="ROLE_ASSIGNED",
        message=f"{person.label} is now {role} (assigned by {actor.label})",
        actor=actor.label,
        source=actor.origin,
        data={"role": role, "person": person_ref},
    )
    session.flush()
    _after_change(session, rt, incident, event, None, actor)
    return existing


def update_details(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    actor: Actor,
    title: str | None = None,
    description: str | None = None,
) -> bool:
    """Change the title and/or description (unchanged values are skipped). Writes one
    ``INCIDENT_UPDATED`` event and refreshes the Slack surfaces and the LID. Returns True
    when something changed."""
    changes: list[str] = []
    if title is not None and title.strip() and title.strip() != incident.title:
        incident.title = title.strip()
        changes.append("title")
    if description is not None and description.strip() != incident.description:
        incident.description = description.strip()
        changes.append("description")
    if not changes:
        return False
    event = incident_store.add_event(
        session,
        incident=incident,
        type="INCIDENT_UPDATED",
        message=f"{' and '.join(changes).capitalize()} changed by {actor.label}",
        actor=actor.label,
        source=actor.origin,
        data={"changes": changes},
    )
    _after_change(session, rt, incident, event, None, actor)
    return True
