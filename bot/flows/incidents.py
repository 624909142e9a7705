"""Every act on an existing incident, and every read of one, from every door.

Slack commands, buttons and modals, App Home, REST, the HTML pages and the CLI call these
functions and nothing else to reach an incident. Each one, in one transaction: looks the
incident up (by id, short id, or war-room channel), applies the access policy
(``bot.access``), makes the change with its timeline event and outbox rows
(``bot.flows.lifecycle`` and friends), writes one audit row per committed change, commits,
then wakes the outbox. It never calls HTTP.

Errors (``bot.domain.errors``): ``NotFoundError`` for an unknown incident or one the actor
may not see (the same answer, so a private incident's existence does not leak);
``PermissionDeniedError`` for a role too low (the denial is audited, nothing else is
written); ``InputError`` / ``ConflictError`` for bad input or a change already in effect
(nothing is written). Acts are safe to repeat: a repeated status change is a
``ConflictError``, not a second change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import access, audit
from bot.access import Action
from bot.domain.actor import Actor
from bot.domain.enums import (
    AccessRole,
    Status,
    parse_incident_role,
    parse_severity,
    parse_status,
)
from bot.domain.errors import InputError, NotFoundError
from bot.domain.text import check_text
from bot.flows import lifecycle, paging, pins, scheduled
from bot.flows import repair as repair_flow
from bot.presenter import incident_json, view_of
from bot.runtime import Runtime
from providers.base import IncidentView
from storage import alerts as alert_store
from storage import incidents as incident_store
from storage.alerts import AlertFilter
from storage.incidents import IncidentFilter, PrivateViewer
from storage.models import Alert, Incident, TimelineEvent

MAX_ID = 2**31 - 1
ACTION_FOR_STATUS = {
    Status.ACKNOWLEDGED: Action.ACKNOWLEDGE,
    Status.MITIGATED: Action.MITIGATE,
    Status.RESOLVED: Action.RESOLVE,
    Status.TRIGGERED: Action.REOPEN,
}


@dataclass(frozen=True)
class Outcome:
    """What an act or a read gives back to its door.

    ``incident`` is the incident as ``bot.presenter.incident_json`` renders it (after the
    act); ``message`` one sentence a door may show as is; ``data`` the act's own result
    (the timeline event written, a repair report, a snooze's due time…)."""

    incident: dict[str, Any]
    message: str
    data: Any = None


@dataclass(frozen=True)
class _Change:
    message: str
    data: Any = None
    changed: bool = True  # False: nothing was written (no audit row)


def _huge_id(ref: str | int) -> bool:
    """A numeric reference no row can have (non-ASCII digits, > 10 digits, > 32 bits)."""
    if isinstance(ref, int):
        return not -MAX_ID <= ref <= MAX_ID
    text = ref.strip()
    return text.isdigit() and (not text.isascii() or len(text) > 10 or int(text) > MAX_ID)


def lookup(session: Session, *, ref: str | int | None, channel_id: str | None) -> Incident:
    """The incident named by ``ref`` (id or short id), else the one whose war room is
    ``channel_id``. No access check: callers in this module apply the policy."""
    if ref is not None and str(ref).strip():
        incident = None if _huge_id(ref) else incident_store.get_incident(session, ref=ref)
        if incident is None:
            raise NotFoundError(f"No incident {str(ref).strip()[:40]}.")
        return incident
    if channel_id:
        incident = incident_store.get_by_war_room(session, channel_id=channel_id)
        if incident is not None:
            return incident
    raise InputError(
        "Which incident? Run this in its war room or add its id, e.g. `INC-A1B2C3`.",
        field="incident",
    )


def _snapshot(incident: Incident) -> dict[str, Any]:
    return {
        "status": incident.status,
        "severity": incident.severity,
        "title": incident.title,
        "description": incident.description,
        "lead": incident.lead.label if incident.lead else None,
        "resolution_summary": incident.resolution_summary,
        "roles": {role.role: role.person.label for role in incident.roles},
    }


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {key: [before[key], after[key]] for key in before if before[key] != after[key]}


def _act(
    rt: Runtime,
    *,
    actor: Actor,
    action: Action,
    ref: str | int | None,
    channel_id: str | None,
    change: Callable[[Session, Incident], _Change],
    audit_name: str | None = None,
) -> Outcome:
    audit_action = audit_name or f"incident.{action.value}"
    target: str | None = None
    try:
        with rt.transaction() as session:
            incident = lookup(session, ref=ref, channel_id=channel_id)
            target = incident.short_id
            access.require(session, actor, action, incident, ref=ref)
            before = _snapshot(incident)
            result = change(session, incident)
            session.flush()
            session.expire(incident)  # reload relationships changed through their ids
            if result.changed:
                audit.record(
                    session,
                    actor,
                    action=audit_action,
                    target_type="incident",
                    target=incident.short_id,
                    changes=_diff(before, _snapshot(incident)),
                )
            view = incident_json(session, rt, incident)
    except access.Denial as denial:
        audit.record_denial(
            rt,
            actor,
            action=audit_action,
            target_type="incident",
            target=target,
            detail=denial.reason,
        )
        raise denial.error from None
    if result.changed:
        rt.wake_outbox()
    return Outcome(view, result.message, result.data)


def event_json(event: TimelineEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat() if event.at else None,
        "type": event.type,
        "message": event.message,
        "actor": event.actor,
        "source": event.source,
        "data": event.data or {},
    }


# -- reads -----------------------------------------------------------------------------


def show(
    rt: Runtime,
    *,
    actor: Actor,
    ref: str | int | None = None,
    channel_id: str | None = None,
    detail: bool = True,
) -> dict[str, Any]:
    """The incident (with its timeline and deliveries when ``detail``), if visible."""
    with rt.reading() as session:
        incident = lookup(session, ref=ref, channel_id=channel_id)
        _require_read(session, actor, incident, ref)
        return incident_json(session, rt, incident, detail=detail)


def _require_read(
    session: Session,
    actor: Actor,
    incident: Incident | None,
    ref: object,
    action: Action = Action.VIEW,
) -> None:
    """The policy for an act that writes nothing (viewing, joining): its refusal is not
    audited, the actor is just told (not found, or the role needed)."""
    try:
        access.require(session, actor, action, incident, ref=ref)
    except access.Denial as denial:  # reads are not audited: nothing was attempted
        raise denial.error from None


def allowed(
    rt: Runtime, *, actor: Actor, ref: str | int | None = None, channel_id: str | None = None
) -> set[Action]:
    """The actions ``actor`` may take on the incident (empty when it is not visible)."""
    with rt.reading() as session:
        try:
            incident = lookup(session, ref=ref, channel_id=channel_id)
        except NotFoundError:
            return set()
        return access.allowed_actions(session, actor, incident)


def list_incidents(
    rt: Runtime, *, actor: Actor, filters: IncidentFilter, offset: int = 0, limit: int = 50
) -> tuple[int, list[dict[str, Any]]]:
    """Incidents matching ``filters`` that ``actor`` may see, newest first, and their count.

    Private incidents are listed for managers and admins, and for the people involved in
    them; ``filters.include_private`` can only narrow that."""
    with rt.reading() as session:
        seen = access.visibility(session, actor)
        _require_read(session, actor, None, None)
        if not seen.all_private:
            filters.include_private = False
            filters.private_visible_to = PrivateViewer(seen.person_id, seen.slack_user_id)
        count, rows = incident_store.list_incidents(
            session, filters=filters, offset=offset, limit=limit
        )
        return count, [incident_json(session, rt, incident) for incident in rows]


def timeline(
    rt: Runtime, *, actor: Actor, ref: str | int, offset: int = 0, limit: int = 1000
) -> tuple[int, list[dict[str, Any]]]:
    with rt.reading() as session:
        incident = lookup(session, ref=ref, channel_id=None)
        _require_read(session, actor, incident, ref)
        events = incident_store.timeline(session, incident_id=incident.id)
        return len(events), [event_json(e) for e in events[offset : offset + limit]]


def actor_role(rt: Runtime, actor: Actor) -> AccessRole:
    """The access role the policy gives ``actor`` (for rendering what it may do)."""
    with rt.reading() as session:
        return access.role_of(session, actor)


# -- acts ------------------------------------------------------------------------------


def set_status(
    rt: Runtime,
    *,
    actor: Actor,
    status: Status | str,
    ref: str | int | None = None,
    channel_id: str | None = None,
    summary: str | None = None,
    note: str | None = None,
) -> Outcome:
    """Acknowledge / mitigate / resolve (``summary``: the resolution) / reopen. ``note``
    (other statuses) is added to the timeline in the same transaction."""
    check_text(summary, "summary", label="resolution summary", multiline=True)
    check_text(note, "note", multiline=True)
    target = parse_status(status)

    def change(session: Session, incident: Incident) -> _Change:
        lifecycle.change_status(
            session,
            rt,
            incident=incident,
            status=target.value,
            actor=actor,
            summary=summary if target is Status.RESOLVED else None,
        )
        if note and note.strip() and target is not Status.RESOLVED:
            lifecycle.add_note(session, rt, incident=incident, text=note, actor=actor)
        return _Change(f"{incident.short_id} is now {target.value}.")

    return _act(
        rt,
        actor=actor,
        action=ACTION_FOR_STATUS[target],
        ref=ref,
        channel_id=channel_id,
        change=change,
    )


def change_severity(
    rt: Runtime,
    *,
    actor: Actor,
    severity: str,
    ref: str | int | None = None,
    channel_id: str | None = None,
    reason: str | None = None,
) -> Outcome:
    """``reason`` (optional) is written to the timeline with the change."""
    wanted = parse_severity(severity)

    def change(session: Session, incident: Incident) -> _Change:
        lifecycle.change_severity(
            session, rt, incident=incident, severity=wanted.value, actor=actor, reason=reason
        )
        return _Change(f"{incident.short_id} is now {wanted.value}.")

    return _act(
        rt, actor=actor, action=Action.SEVERITY, ref=ref, channel_id=channel_id, change=change
    )


def add_note(
    rt: Runtime,
    *,
    actor: Actor,
    text: str,
    ref: str | int | None = None,
    channel_id: str | None = None,
) -> Outcome:
    """``data``: the timeline event (``event_json``)."""
    check_text(text, "text", label="note", multiline=True)

    def change(session: Session, incident: Incident) -> _Change:
        event = lifecycle.add_note(session, rt, incident=incident, text=text, actor=actor)
        return _Change(f"Note added to the timeline of {incident.short_id}.", event_json(event))

    return _act(rt, actor=actor, action=Action.NOTE, ref=ref, channel_id=channel_id, change=change)


def add_followup(
    rt: Runtime,
    *,
    actor: Actor,
    title: str,
    owner: str | None = None,
    due: str | None = None,
    ref: str | int | None = None,
    channel_id: str | None = None,
) -> Outcome:
    """Add a follow-up action (tracked in IMAS); ``owner`` an e-mail or Slack user id,
    ``due`` ``YYYY-MM-DD``. ``data``: the follow-up (``action_items.followup_json``)."""
    from bot.flows import action_items

    due_date = action_items.parse_due(due)

    def change(session: Session, incident: Incident) -> _Change:
        item = action_items.add(
            session, rt, incident=incident, title=title, actor=actor, owner_ref=owner, due=due_date
        )
        return _Change(
            f"Follow-up #{item.id} added to {incident.short_id}.",
            action_items.followup_json(item),
        )

    return _act(
        rt,
        actor=actor,
        action=Action.NOTE,
        ref=ref,
        channel_id=channel_id,
        change=change,
        audit_name="incident.followup",
    )


def complete_followup(
    rt: Runtime,
    *,
    actor: Actor,
    followup_id: int,
    ref: str | int | None = None,
    channel_id: str | None = None,
) -> Outcome:
    """Mark a follow-up done. ``data``: the follow-up."""
    from bot.flows import action_items

    def change(session: Session, incident: Incident) -> _Change:
        item = action_items.complete(
            session, rt, incident=incident, followup_id=followup_id, actor=actor
        )
        return _Change(f"Follow-up #{item.id} is done.", action_items.followup_json(item))

    return _act(
        rt,
        actor=actor,
        action=Action.NOTE,
        ref=ref,
        channel_id=channel_id,
        change=change,
        audit_name="incident.followup_done",
    )


def list_followups(
    rt: Runtime, *, actor: Actor, ref: str | int | None = None, channel_id: str | None = None
) -> list[dict[str, Any]]:
    """The incident's follow-ups, oldest first, if the incident is visible."""
    from bot.flows import action_items

    with rt.reading() as session:
        incident = lookup(session, ref=ref, channel_id=channel_id)
        _require_read(session, actor, incident, ref)
        return [
            action_items.followup_json(f) for f in action_items.of_incident(session, incident.id)
        ]


def post_update(
    rt: Runtime,
    *,
    actor: Actor,
    text: str,
    ref: str | int | None = None,
    channel_id: str | None = None,
    impact: str | None = None,
    next_update_minutes: int | None = None,
) -> Outcome:
    check_text(text, "text", label="update", multiline=True)
    check_text(impact, "impact", multiline=True)

    def change(session: Session, incident: Incident) -> _Change:
        event = lifecycle.post_status_update(
            session,
            rt,
            incident=incident,
            text=text,
            actor=actor,
            impact=impact,
            next_update_minutes=next_update_minutes,
        )
        return _Change(f"Status update posted for {incident.short_id}.", event_json(event))

    return _act(
        rt, actor=actor, action=Action.UPDATE, ref=ref, channel_id=channel_id, change=change
    )


def assign_role(
    rt: Runtime,
    *,
    actor: Actor,
    role: str,
    person: str,
    ref: str | int | None = None,
    channel_id: str | None = None,
) -> Outcome:
    """``person``: a Slack user id or an e-mail address."""
    check_text(person, "person")
    wanted = parse_incident_role(role)

    def change(session: Session, incident: Incident) -> _Change:
        holder = lifecycle.assign_role(
            session, rt, incident=incident, role=wanted.value, person_ref=person, actor=actor
        )
        return _Change(f"{holder.person.label} is now {wanted.value} of {incident.short_id}.")

    return _act(rt, actor=actor, action=Action.ROLE, ref=ref, channel_id=channel_id, change=change)


def edit(
    rt: Runtime,
    *,
    actor: Actor,
    ref: str | int,
    title: str | None = None,
    description: str | None = None,
    severity: str | None = None,
    lead: str | None = None,
) -> Outcome:
    """Declarative update (REST PATCH): values equal to the current ones are skipped, so an
    empty or repeated edit writes nothing (and no audit row)."""
    check_text(title, "title")
    check_text(description, "description", multiline=True)
    check_text(lead, "lead")
    wanted = parse_severity(severity) if severity is not None else None

    def change(session: Session, incident: Incident) -> _Change:
        changed = lifecycle.update_details(
            session, rt, incident=incident, actor=actor, title=title, description=description
        )
        if wanted is not None and wanted.value != incident.severity:
            lifecycle.change_severity(
                session, rt, incident=incident, severity=wanted.value, actor=actor
            )
            changed = True
        if lead is not None:
            current = incident.lead
            if current is None or lead.lower() not in (
                (current.email or "").lower(),
                (current.slack_user_id or "").lower(),
            ):
                lifecycle.assign_role(
                    session, rt, incident=incident, role="lead", person_ref=lead, actor=actor
                )
                changed = True
        return _Change(f"{incident.short_id} updated.", changed=changed)

    return _act(rt, actor=actor, action=Action.EDIT, ref=ref, channel_id=None, change=change)


def page(
    rt: Runtime,
    *,
    actor: Actor,
    target: str,
    reason: str | None = None,
    ref: str | int | None = None,
    channel_id: str | None = None,
) -> Outcome:
    """Page a team's on-call or a person (see ``bot.flows.paging.page``)."""

    def change(session: Session, incident: Incident) -> _Change:
        event = paging.page(
            session, rt, incident=incident, target=target, actor=actor, reason=reason
        )
        return _Change(f"📟 {event.message} for {incident.short_id}.", event_json(event))

    return _act(rt, actor=actor, action=Action.PAGE, ref=ref, channel_id=channel_id, change=change)


def repair(
    rt: Runtime, *, actor: Actor, ref: str | int | None = None, channel_id: str | None = None
) -> Outcome:
    """``data``: the ``RepairReport`` (steps and scheduled tasks, detached rows)."""

    def change(session: Session, incident: Incident) -> _Change:
        report = repair_flow.repair(session, rt, incident=incident, actor=actor)
        return _Change(
            f"{incident.short_id}: {report.retried} failed step(s) queued again.", report
        )

    return _act(
        rt, actor=actor, action=Action.REPAIR, ref=ref, channel_id=channel_id, change=change
    )


def snooze(
    rt: Runtime,
    *,
    actor: Actor,
    minutes: int,
    ref: str | int | None = None,
    channel_id: str | None = None,
) -> Outcome:
    """Move the next status-update reminder; ``data``: when it is now due (UTC)."""

    def change(session: Session, incident: Incident) -> _Change:
        due: datetime = scheduled.snooze(
            session, rt, incident=incident, minutes=minutes, actor=actor
        )
        return _Change(
            f"Status-update reminder for {incident.short_id} snoozed for {minutes} min.", due
        )

    return _act(
        rt, actor=actor, action=Action.SNOOZE, ref=ref, channel_id=channel_id, change=change
    )


def pin(
    rt: Runtime,
    *,
    actor: Actor,
    channel_id: str,
    ts: str,
    author: str | None,
    request_key: str | None = None,
) -> Outcome | None:
    """📌 on a war-room message: the message joins the timeline (once). None when the
    channel is no incident's war room."""
    try:
        return _act(
            rt,
            actor=actor,
            action=Action.PIN,
            ref=None,
            channel_id=channel_id,
            change=lambda session, incident: _pinned(
                pins.pin_message(
                    session,
                    incident=incident,
                    channel=channel_id,
                    ts=ts,
                    author=author,
                    actor=actor,
                    request_key=request_key,
                ),
                incident,
            ),
        )
    except InputError:
        return None


def _pinned(event: TimelineEvent | None, incident: Incident) -> _Change:
    if event is None:
        return _Change(f"Already in the timeline of {incident.short_id}.", changed=False)
    return _Change(f"Pinned to the timeline of {incident.short_id}.", event_json(event))


def unpin(rt: Runtime, *, actor: Actor, channel_id: str, ts: str) -> Outcome | None:
    """📌 removed: the pinned message leaves the timeline. None when not an incident's room."""

    def change(session: Session, incident: Incident) -> _Change:
        removed = pins.unpin_message(session, incident=incident, channel=channel_id, ts=ts)
        return _Change(f"Unpinned from {incident.short_id}.", changed=removed)

    try:
        return _act(
            rt, actor=actor, action=Action.PIN, ref=None, channel_id=channel_id, change=change
        )
    except InputError:
        return None


def war_room(rt: Runtime, *, actor: Actor, ref: str | int) -> str | None:
    """The war-room channel id the actor may join (None when there is none yet)."""
    with rt.reading() as session:
        incident = lookup(session, ref=ref, channel_id=None)
        _require_read(session, actor, incident, ref, Action.JOIN)
        return incident.war_room_channel_id


def check(
    rt: Runtime,
    *,
    actor: Actor,
    action: Action,
    ref: str | int | None = None,
    channel_id: str | None = None,
) -> str:
    """The incident's short id when ``actor`` may do ``action`` to it (a door asks before
    opening a form for the act). A denied write attempt is audited."""
    with rt.reading() as session:
        incident = lookup(session, ref=ref, channel_id=channel_id)
        short_id = incident.short_id
        try:
            access.require(session, actor, action, incident, ref=ref)
            return short_id
        except access.Denial as caught:
            denial = caught
    if action not in access.READ_ACTIONS:
        audit.record_denial(
            rt,
            actor,
            action=f"incident.{action.value}",
            target_type="incident",
            target=short_id,
            detail=denial.reason,
        )
    raise denial.error


def person_id(rt: Runtime, *, actor: Actor) -> int:
    """The actor's person id (-1 when IMAS does not know them yet): "my incidents"."""
    with rt.reading() as session:
        seen = access.visibility(session, actor)
        return seen.person_id if seen.person_id is not None else -1


def home_lists(
    rt: Runtime, *, actor: Actor, limit: int = 60
) -> tuple[list[IncidentView], list[IncidentView]]:
    """App Home: (the open incidents the actor is involved in, the other open incidents
    they may see), at most ``limit`` in all, newest first."""
    with rt.reading() as session:
        seen = access.visibility(session, actor)
        _total, rows = incident_store.list_incidents(
            session, filters=IncidentFilter(open_only=True), limit=200
        )
        mine: list[IncidentView] = []
        others: list[IncidentView] = []
        for incident in access.visible(session, seen, rows):
            involved = seen.person_id is not None and seen.person_id in (
                access.involved_person_ids(incident)
            )
            if len(mine) + len(others) < limit:
                (mine if involved else others).append(view_of(session, rt, incident))
        return mine, others


def list_alerts(
    rt: Runtime, *, actor: Actor, filters: AlertFilter, offset: int = 0, limit: int = 50
) -> tuple[int, list[tuple[Alert, str | None]]]:
    """Alerts, each with its incident's short id; alerts of private incidents the actor may
    not see are left out (as the incidents themselves are)."""
    with rt.reading() as session:
        seen = access.visibility(session, actor)
        if not seen.all_private:
            filters.private_visible_to = PrivateViewer(seen.person_id, seen.slack_user_id)
        return alert_store.list_alerts(session, filters=filters, offset=offset, limit=limit)


def postmortem_markdown(
    rt: Runtime, *, actor: Actor, ref: str | int | None = None, channel_id: str | None = None
) -> tuple[str, str]:
    """The incident's post-mortem draft as Markdown, if visible: ``(short_id, text)``.
    The same facts IMAS writes into the LID's POST-MORTEM section (``bot.postmortem``)."""
    from bot import postmortem

    with rt.reading() as session:
        incident = lookup(session, ref=ref, channel_id=channel_id)
        _require_read(session, actor, incident, ref)
        return incident.short_id, postmortem.to_markdown(postmortem.build(session, incident))
