"""Time-driven work on incidents: status-update reminders, escalation of unacknowledged
incidents, archiving of resolved war rooms.

State lives in ``scheduled_tasks`` (one row per incident and kind), so a restart loses
nothing. Flows keep the rows in step with the incident (:func:`sync_tasks`, called in
their transaction); the scheduler job (:func:`run_due_tasks`) fires the due ones:

1. *claim*: in one transaction, due rows (``scheduled`` and ``due_at <= now``, or
   ``running`` with an expired lease: their process died) become ``running`` with a lease,
   ``runs`` counting the claim (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
   ``BEGIN IMMEDIATE`` serialises claimers);
2. *fire*: in a second transaction, only if the row is still ``running`` with the same
   ``runs`` (nobody snoozed, cancelled or re-claimed it meanwhile), the task's effects are
   written (outbox rows, timeline events) together with its next state.

A task therefore fires once even with two processes: effects and state transition commit
together or not at all, and a second claimer finds the row already moved on. Firing only
writes to the database; the Slack calls are outbox steps (``bot.flows.slack_steps``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import audit
from bot.domain.actor import SYSTEM, Actor
from bot.domain.errors import ConflictError, InputError
from bot.flows import escalation as escalation_policies
from bot.flows import paging
from bot.flows.oncall import current_for_team
from bot.flows.slack_steps import WAR_ROOM, enqueue_archive, enqueue_post
from bot.presenter import view_of
from bot.router import route_event
from bot.runtime import Runtime
from providers.slack_blocks import escalation_here_text, reminder_blocks, reminder_text
from storage import catalog
from storage import incidents as incident_store
from storage.models import Incident, ScheduledTask, Team, TimelineEvent

log = logging.getLogger(__name__)

ESCALATION = "escalation"
REMINDER = "reminder"
ARCHIVE = "archive"
ACTIVE_STATES = ("scheduled", "running")
LEASE_SECONDS = 120.0
DEFAULT_REMINDER_MINUTES = {"SEV1_CRITICAL": 30, "SEV2_HIGH": 60, "SEV3_MEDIUM": 0, "SEV4_LOW": 0}
DEFAULT_ARCHIVE_AFTER_HOURS = 24.0
CHANNEL_TARGETS = ("@here", "@channel", "here", "channel")


# -- settings --------------------------------------------------------------------------


def reminder_minutes(session: Session, severity: str) -> int:
    """Minutes between status-update reminders for ``severity`` (0: no reminders)."""
    configured = catalog.get_app_setting(session, key="reminders")
    value = configured.get(severity, DEFAULT_REMINDER_MINUTES.get(severity, 0))
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def archive_after_hours(session: Session) -> float:
    value = catalog.get_app_setting(session, key="war_room").get("archive_after_hours")
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_ARCHIVE_AFTER_HOURS
    except (TypeError, ValueError):
        return DEFAULT_ARCHIVE_AFTER_HOURS


def escalation_chain(team: Team) -> list[dict[str, Any]]:
    """The levels after the on-call: the team's ``escalation_levels``, else its channel
    with ``@here``. Each level: ``{"target": ..., "delay_minutes": n}``."""
    levels = [
        dict(level)
        for level in team.escalation_levels or []
        if isinstance(level, dict) and level.get("target")
    ]
    return levels or [{"target": "@here", "delay_minutes": team.escalation_timeout_minutes}]


# -- keeping tasks in step with incidents ------------------------------------------------


def get_task(session: Session, *, incident_id: int, kind: str) -> ScheduledTask | None:
    return session.scalar(
        select(ScheduledTask).where(
            ScheduledTask.incident_id == incident_id, ScheduledTask.kind == kind
        )
    )


def _arm(
    session: Session, *, incident: Incident, kind: str, due_at: datetime, data: dict[str, Any]
) -> ScheduledTask:
    """Create or re-arm the (incident, kind) task, due at ``due_at``."""
    task = get_task(session, incident_id=incident.id, kind=kind)
    if task is None:
        task = ScheduledTask(
            incident_id=incident.id, kind=kind, due_at=due_at, state="scheduled", runs=0, data=data
        )
        try:
            with session.begin_nested():
                session.add(task)
                session.flush()
            return task
        except IntegrityError:  # created concurrently: re-arm that one
            task = get_task(session, incident_id=incident.id, kind=kind)
            if task is None:
                raise
    task.due_at = due_at
    task.state = "scheduled"
    task.lease_until = None
    task.data = data
    return task


def _cancel(task: ScheduledTask | None) -> None:
    if task is not None and task.state in ACTIVE_STATES:
        task.state = "cancelled"
        task.lease_until = None


def sync_tasks(session: Session, rt: Runtime, *, incident: Incident) -> None:
    """Create, move or cancel the incident's tasks to match its state (idempotent).

    * TRIGGERED: an escalation due after the team's ``escalation_timeout_minutes`` (armed
      once: a reopened incident does not escalate again); any other status cancels it.
    * open: a status-update reminder every ``reminders[severity]`` minutes (0: none).
    * RESOLVED: archiving of the war room ``war_room.archive_after_hours`` after
      ``resolved_at``; reopening cancels it.
    """
    now = rt.clock()
    escalation = get_task(session, incident_id=incident.id, kind=ESCALATION)
    if incident.status == "TRIGGERED":
        team = incident.team
        if escalation is None and team is not None:
            # An escalation policy (bot.flows.escalation) for this team and severity, else
            # the fixed chain after escalation_timeout_minutes.
            policy = escalation_policies.policy_for(session, team, incident.severity)
            _arm(
                session,
                incident=incident,
                kind=ESCALATION,
                due_at=now
                + (
                    escalation_policies.first_delay(policy)
                    if policy
                    else timedelta(minutes=team.escalation_timeout_minutes)
                ),
                data={"level": 0, "policy": policy.name} if policy else {"level": 0},
            )
    else:
        _cancel(escalation)

    reminder = get_task(session, incident_id=incident.id, kind=REMINDER)
    minutes = reminder_minutes(session, incident.severity)
    if not incident.is_open:
        _cancel(reminder)
    elif minutes > 0:
        if (
            reminder is None
            or reminder.state not in ACTIVE_STATES
            or (reminder.data or {}).get("minutes") != minutes
        ):
            _arm(
                session,
                incident=incident,
                kind=REMINDER,
                due_at=now + timedelta(minutes=minutes),
                data={"minutes": minutes},
            )
    elif reminder is not None and not (reminder.data or {}).get("one_shot"):
        _cancel(reminder)

    archive = get_task(session, incident_id=incident.id, kind=ARCHIVE)
    if incident.status == "RESOLVED":
        resolved_at = incident.resolved_at or now
        stamp = resolved_at.isoformat()
        if archive is None or (archive.data or {}).get("resolved_at") != stamp:
            _arm(
                session,
                incident=incident,
                kind=ARCHIVE,
                due_at=resolved_at + timedelta(hours=archive_after_hours(session)),
                data={"resolved_at": stamp},
            )
    else:
        _cancel(archive)


def status_update_posted(
    session: Session, rt: Runtime, *, incident: Incident, next_update_minutes: int | None
) -> None:
    """A status update resets the reminder: next one after ``next_update_minutes`` (when
    given, even for a severity without reminders), else after the usual interval."""
    if not incident.is_open:
        return
    minutes = reminder_minutes(session, incident.severity)
    wait = next_update_minutes if next_update_minutes and next_update_minutes > 0 else minutes
    if wait <= 0:
        return
    _arm(
        session,
        incident=incident,
        kind=REMINDER,
        due_at=rt.clock() + timedelta(minutes=wait),
        data={"minutes": minutes, "one_shot": minutes == 0},
    )


def snooze(
    session: Session, rt: Runtime, *, incident: Incident, minutes: int, actor: Actor
) -> datetime:
    """Move the next status-update reminder to ``minutes`` from now; returns when."""
    if minutes <= 0 or minutes > 24 * 60:
        raise InputError("Snooze for 1 minute to 24 hours.", field="minutes")
    if not incident.is_open:
        raise ConflictError(f"{incident.short_id} is resolved: no reminder to snooze.")
    due = rt.clock() + timedelta(minutes=minutes)
    interval = reminder_minutes(session, incident.severity)
    _arm(
        session,
        incident=incident,
        kind=REMINDER,
        due_at=due,
        data={"minutes": interval, "one_shot": interval == 0, "snoozed_by": actor.label},
    )
    incident_store.add_event(
        session,
        incident=incident,
        type="REMINDER_SNOOZED",
        message=f"Status-update reminder snoozed for {minutes} min by {actor.label}",
        actor=actor.label,
        source=actor.origin,
        data={"minutes": minutes, "until": due.isoformat()},
    )
    return due


# -- the job ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    task_id: int
    run: int
    kind: str


def claim_due(rt: Runtime, *, now: datetime, limit: int = 50) -> list[Claim]:
    """Mark due tasks ``running`` under a lease; returns what this caller must fire."""
    due = or_(
        and_(ScheduledTask.state == "scheduled", ScheduledTask.due_at <= now),
        and_(ScheduledTask.state == "running", ScheduledTask.lease_until < now),
    )
    with rt.transaction() as session:
        query = select(ScheduledTask).where(due).order_by(ScheduledTask.due_at).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claims = []
        for task in session.scalars(query):
            task.state = "running"
            task.lease_until = now + timedelta(seconds=LEASE_SECONDS)
            task.runs += 1
            claims.append(Claim(task.id, task.runs, task.kind))
        return claims


def fire(rt: Runtime, claim: Claim) -> bool:
    """Fire one claimed task; False when it was snoozed, cancelled or re-claimed since."""
    with rt.transaction() as session:
        query = select(ScheduledTask).where(
            ScheduledTask.id == claim.task_id,
            ScheduledTask.state == "running",
            ScheduledTask.runs == claim.run,
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        task = session.scalar(query)
        if task is None:
            return False
        incident = session.get(Incident, task.incident_id)
        task.lease_until = None
        if incident is None:
            task.state = "cancelled"
            return False
        handler = FIRE.get(task.kind)
        if handler is None:
            log.error("unknown scheduled task kind %r (#%s)", task.kind, task.id)
            task.state = "failed"
            return False
        return handler(session, rt, task, incident)


def run_due_tasks(rt: Runtime, *, limit: int = 50) -> int:
    """The scheduler job: claim and fire every due task; returns how many fired."""
    fired = 0
    for claim in claim_due(rt, now=rt.clock(), limit=limit):
        try:
            if fire(rt, claim):
                fired += 1
        except Exception:  # its lease expires and another tick retries it
            log.exception("scheduled %s task #%s failed", claim.kind, claim.task_id)
    return fired


# -- firing ----------------------------------------------------------------------------


def _minutes_since_update(session: Session, incident: Incident, now: datetime) -> int:
    last = session.scalar(
        select(TimelineEvent.at)
        .where(TimelineEvent.incident_id == incident.id, TimelineEvent.type == "STATUS_UPDATE")
        .order_by(TimelineEvent.at.desc())
        .limit(1)
    )
    start = last or incident.created_at
    return max(0, int((now - start).total_seconds() // 60))


def _fire_reminder(session: Session, rt: Runtime, task: ScheduledTask, incident: Incident) -> bool:
    if not incident.is_open:
        task.state = "cancelled"
        return False
    now = rt.clock()
    view = view_of(session, rt, incident)
    since = _minutes_since_update(session, incident, now)
    enqueue_post(
        session,
        incident=incident,
        key=f"reminder:{incident.id}:{task.runs}",
        channel=WAR_ROOM,
        text=reminder_text(view, since),
        blocks=reminder_blocks(view, since),
    )
    minutes = reminder_minutes(session, incident.severity)
    data = dict(task.data or {})
    data.update(minutes=minutes, last_sent_at=now.isoformat(), one_shot=False)
    data.pop("snoozed_by", None)
    task.data = data
    if minutes > 0:
        task.due_at = now + timedelta(minutes=minutes)
        task.state = "scheduled"
    else:
        task.state = "done"
    return True


def _is_channel_target(target: str) -> bool:
    return target.lower() in CHANNEL_TARGETS or target[:1] in ("C", "G", "#")


def _fire_escalation(
    session: Session, rt: Runtime, task: ScheduledTask, incident: Incident
) -> bool:
    if (task.data or {}).get("policy"):
        return escalation_policies.fire_step(session, rt, task, incident)
    team = incident.team
    if incident.status != "TRIGGERED" or team is None:
        task.state = "cancelled"
        return False
    now = rt.clock()
    level = int((task.data or {}).get("level", 0))
    chain = escalation_chain(team)
    waited = max(0, int((now - incident.created_at).total_seconds() // 60))
    number = level + 1
    if level == 0:
        on_call = current_for_team(session, team, now)
        who = on_call.label if on_call else "nobody is on call"
        text = f"Not acknowledged after {waited} min: escalated to the on-call of {team.name}"
        route_event(
            session,
            rt,
            incident=incident,
            event="escalated",
            event_key=f"escalated:{number}",
            text=text,
            actor="IMAS",
        )
        message, target = f"{text} ({who})", on_call.label if on_call else None
    else:
        target = str(chain[level - 1]["target"])
        if _is_channel_target(target):
            channel = team.slack_channel_id if target.lower() in CHANNEL_TARGETS else target
            channel = channel.lstrip("#") if channel else None
            if channel and not incident.private:
                view = view_of(session, rt, incident)
                enqueue_post(
                    session,
                    incident=incident,
                    key=f"escalation:{incident.id}:{number}",
                    channel=channel,
                    text=escalation_here_text(view, waited),
                )
                message = f"Not acknowledged after {waited} min: escalated to @here in <#{channel}>"
            else:
                why = "private incident" if incident.private else "no team channel"
                message = f"Not acknowledged after {waited} min: channel escalation skipped ({why})"
        else:
            label = paging.notify_person(
                session,
                rt,
                incident=incident,
                person_ref=target,
                event="escalated",
                event_key=f"escalated:{number}",
                text=f"Not acknowledged after {waited} min: escalated to you",
                actor="IMAS",
            )
            message = f"Not acknowledged after {waited} min: escalated to {label}"
    incident_store.add_event(
        session,
        incident=incident,
        type="ESCALATION",
        message=message,
        actor="IMAS",
        source="scheduler",
        data={"level": number, "target": target, "waited_minutes": waited},
    )
    before = incident.escalation_level or 0
    incident.escalation_level = max(before, number)
    audit.record(
        session,
        SYSTEM,
        action="incident.escalate",
        target_type="incident",
        target=incident.short_id,
        changes={"escalation_level": [before, incident.escalation_level], "paged": [None, target]},
    )
    if level < len(chain):
        delay = chain[level].get("delay_minutes") or team.escalation_timeout_minutes
        task.due_at = now + timedelta(minutes=int(delay))
        task.data = {"level": number}
        task.state = "scheduled"
    else:
        task.data = {"level": number}
        task.state = "done"
    return True


def _fire_archive(
    session: Session,
    rt: Runtime,  # noqa: ARG001 - every firing function has the same signature
    task: ScheduledTask,
    incident: Incident,
) -> bool:
    task.state = "done"
    if incident.status != "RESOLVED":
        task.state = "cancelled"
        return False
    if not incident.war_room_channel_id:
        return False
    enqueue_archive(session, incident=incident, run=task.runs)
    return True


FIRE = {
    REMINDER: _fire_reminder,
    ESCALATION: _fire_escalation,
    ARCHIVE: _fire_archive,
}
