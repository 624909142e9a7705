"""On-call: who is on call for a team (the engine ``bot.oncall`` over the stored
schedules), overrides, and the shifts behind the calendar feed and ``imas doctor``.

A team's schedule is the ``schedules`` row linked to it (``schedules[].team`` or
``teams[].schedule`` in the config file). Its ``current_on_call`` is the schedule's bottom
layer: on call whenever no layer is, and the whole schedule of a team without one. So a
team configured only with ``current_on_call`` keeps working unchanged, and a gap ("nobody
on call") is only possible for a team with neither.

Overrides ("X covers from A to B") are rows of ``schedule_overrides``; creating one is
one transaction with the access check (``Action.ONCALL``, responder by default), the row
and its audit row (``oncall.override``). Overriding a team without a schedule creates
its schedule (named after the team, no layers: its ``current_on_call`` plus overrides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from bot import access, audit
from bot.access import Action
from bot.domain.actor import Actor
from bot.domain.errors import InputError, NotFoundError
from bot.oncall import Override, Shift, compile_schedule, gaps, shifts, who_is_on_call
from bot.oncall import Schedule as CompiledSchedule
from bot.runtime import Runtime
from storage import catalog
from storage.models import Person, Schedule, ScheduleOverride, Team

MAX_OVERRIDE = timedelta(days=90)
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_duration(text: str) -> timedelta:
    """``2h``, ``30m``, ``1h30m``, ``1d`` → a positive timedelta (InputError otherwise)."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise InputError(
            f"{text!r} is not a duration: use e.g. 2h, 30m, 1h30m or 1d", field="duration"
        )
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def person_ref(person: Person) -> str | None:
    """The ref schedules use for ``person``: the Slack user id, else the e-mail."""
    return person.slack_user_id or person.email


# -- lookups ---------------------------------------------------------------------------


def find_team(session: Session, name: str) -> Team | None:
    return session.scalar(select(Team).where(func.lower(Team.name) == name.strip().lower()))


def find_schedule(session: Session, name: str) -> Schedule | None:
    return session.scalar(select(Schedule).where(func.lower(Schedule.name) == name.strip().lower()))


def schedule_of(session: Session, team: Team) -> Schedule | None:
    return session.scalar(select(Schedule).where(Schedule.team_id == team.id))


def compiled(
    session: Session, row: Schedule | None, *, team: Team | None, since: datetime | None = None
) -> CompiledSchedule:
    """The engine's schedule for ``row`` (its layers and overrides ending after ``since``)
    with the team's ``current_on_call`` as bottom layer."""
    fallback = None
    if team is not None and team.current_on_call is not None:
        fallback = person_ref(team.current_on_call)
    overrides: list[Override] = []
    if row is not None:
        query = (
            select(ScheduleOverride)
            .where(ScheduleOverride.schedule_id == row.id)
            .options(joinedload(ScheduleOverride.person))
            .order_by(ScheduleOverride.id)
        )
        if since is not None:
            query = query.where(ScheduleOverride.ends_at > since)
        for item in session.scalars(query):
            ref = person_ref(item.person)
            if ref:
                overrides.append(Override(ref, item.starts_at, item.ends_at))
    name = row.name if row is not None else (team.name if team else "")
    return compile_schedule(name, row.spec if row is not None else {}, overrides, fallback=fallback)


def resolve_person(session: Session, ref: str | None) -> Person | None:
    """The person a schedule names. Config apply and overrides create everyone they
    name, so this finds them; otherwise an unsaved Person (lookups may run in read-only
    sessions, so nothing is written here)."""
    if not ref:
        return None
    found = catalog.get_person(session, ref=ref)
    if found is not None:
        return found
    if catalog.looks_like_slack_user(ref):
        return Person(slack_user_id=ref, display_name="")
    return Person(email=ref, display_name="")


def current_for_team(session: Session, team: Team, at: datetime) -> Person | None:
    """Who is on call for ``team`` at ``at`` (its schedule, over its ``current_on_call``).
    What the router, paging and escalation ask."""
    row = schedule_of(session, team)
    if row is None:
        return team.current_on_call
    return resolve_person(session, who_is_on_call(compiled(session, row, team=team, since=at), at))


# -- the doors' reads ------------------------------------------------------------------


@dataclass(frozen=True)
class OnCall:
    """Who is on call for one team at one instant, and until when (the current shift's
    end, within the next 30 days; None if it runs longer or nobody is on call)."""

    team: str
    schedule: str | None
    at: datetime
    person: str | None  # label
    slack_user_id: str | None
    ref: str | None
    until: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "schedule": self.schedule,
            "at": self.at.isoformat(),
            "person": self.person,
            "slack_user_id": self.slack_user_id,
            "ref": self.ref,
            "until": self.until.isoformat() if self.until else None,
        }


def _require(session: Session, actor: Actor, action: Action) -> None:
    try:
        access.require(session, actor, action, None)
    except access.Denial as denial:
        raise denial.error from None


def on_call(
    rt: Runtime, *, actor: Actor, team: str | None = None, at: datetime | None = None
) -> list[OnCall]:
    """Who is on call at ``at`` (default now) for ``team``, or for every team."""
    at = at or rt.clock()
    if at.tzinfo is None:
        raise InputError("The time must include a time zone (e.g. 2026-03-29T09:00+02:00).")
    with rt.reading() as session:
        _require(session, actor, Action.VIEW)
        if team:
            found = find_team(session, team)
            if found is None:
                raise NotFoundError(f"No team named {team!r}.", field="team")
            teams = [found]
        else:
            teams = catalog.list_teams(session)
        answers = []
        for item in teams:
            row = schedule_of(session, item)
            schedule = compiled(session, row, team=item, since=at)
            ref = who_is_on_call(schedule, at)
            person = catalog.get_person(session, ref=ref) if ref else None
            upcoming = shifts(schedule, at, at + timedelta(days=30))
            until = upcoming[0].end if upcoming and upcoming[0].start == at else None
            if until is not None and until >= at + timedelta(days=30):
                until = None
            answers.append(
                OnCall(
                    team=item.name,
                    schedule=row.name if row else None,
                    at=at,
                    person=person.label if person else ref,
                    slack_user_id=person.slack_user_id if person else None,
                    ref=ref,
                    until=until if ref else None,
                )
            )
        return answers


def schedule_shifts(
    rt: Runtime, *, actor: Actor, schedule: str, start: datetime, end: datetime
) -> tuple[str, list[tuple[Shift, str]]]:
    """The shifts of a schedule (by schedule or team name) over [start, end), each with
    the person's label. For the calendar feed."""
    with rt.reading() as session:
        _require(session, actor, Action.VIEW)
        row = find_schedule(session, schedule)
        team = row.team if row is not None else find_team(session, schedule)
        if row is None and team is not None:
            row = schedule_of(session, team)
        if row is None and team is None:
            raise NotFoundError(f"No schedule named {schedule!r}.", field="schedule")
        found = shifts(compiled(session, row, team=team, since=start), start, end)
        labels: dict[str, str] = {}
        for shift in found:
            if shift.person not in labels:
                person = catalog.get_person(session, ref=shift.person)
                labels[shift.person] = person.label if person else shift.person
        name = row.name if row is not None else team.name if team is not None else schedule
        return name, [(shift, labels[shift.person]) for shift in found]


def person_shifts(
    rt: Runtime, *, actor: Actor, person: str, start: datetime, end: datetime
) -> tuple[str, list[tuple[Shift, str]]]:
    """A person's shifts over [start, end) across every team and schedule, each with the
    team (or team-less schedule) name. For the per-person calendar feed."""
    with rt.reading() as session:
        _require(session, actor, Action.VIEW)
        found = catalog.get_person(session, ref=person.strip())
        if found is None:
            raise NotFoundError(f"No person {person!r}.", field="person")
        refs = {r.lower() for r in (found.slack_user_id, found.email) if r}
        out: list[tuple[Shift, str]] = []
        sources: list[tuple[Schedule | None, Team | None, str]] = [
            (schedule_of(session, team), team, team.name) for team in catalog.list_teams(session)
        ]
        sources += [
            (row, None, row.name)
            for row in session.scalars(select(Schedule).where(Schedule.team_id.is_(None)))
        ]
        for row, team, name in sources:
            schedule = compiled(session, row, team=team, since=start)
            out += [(s, name) for s in shifts(schedule, start, end) if s.person.lower() in refs]
        out.sort(key=lambda item: (item[0].start, item[1]))
        return found.label, out


def gap_report(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, list[tuple[datetime, datetime]]]]:
    """(team or schedule, gaps) for every team and every team-less schedule with a gap in
    [start, end). For ``imas doctor``."""
    report = []
    for team in catalog.list_teams(session):
        row = schedule_of(session, team)
        holes = gaps(compiled(session, row, team=team, since=start), start, end)
        if holes:
            report.append((f"team {team.name}", holes))
    for row in session.scalars(select(Schedule).where(Schedule.team_id.is_(None))):
        holes = gaps(compiled(session, row, team=None, since=start), start, end)
        if holes:
            report.append((f"schedule {row.name}", holes))
    return report


# -- overrides -------------------------------------------------------------------------


def create_override(
    rt: Runtime,
    *,
    actor: Actor,
    target: str,
    person: str,
    start: datetime | None = None,
    end: datetime | None = None,
    duration: timedelta | None = None,
) -> dict[str, Any]:
    """``person`` (Slack user id or e-mail) covers ``target`` (a team or a schedule) from
    ``start`` (default now) to ``end`` or for ``duration``. Returns the override as JSON."""
    person = person.strip()
    if not (catalog.looks_like_slack_user(person) or "@" in person):
        raise InputError("Who covers? Give a Slack user (@name) or an e-mail.", field="person")
    if not target.strip():
        raise InputError("Override which team or schedule?", field="team")
    now = rt.clock()
    start = start or now
    if (end is None) == (duration is None):
        raise InputError("Give either an end time or a duration (e.g. 2h).", field="duration")
    end = end or start + (duration or timedelta())
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("Times must include a time zone (e.g. 2026-03-29T09:00+02:00).")
    if end <= start:
        raise InputError("The override must end after it starts.", field="ends_at")
    if end <= now:
        raise InputError("The override would be over already.", field="ends_at")
    if end - start > MAX_OVERRIDE:
        raise InputError("An override lasts at most 90 days.", field="ends_at")
    try:
        with rt.transaction() as session:
            access.require(session, actor, Action.ONCALL, None)
            row = find_schedule(session, target)
            if row is None:
                team = find_team(session, target)
                if team is None:
                    raise NotFoundError(f"No team or schedule named {target!r}.", field="team")
                row = schedule_of(session, team)
                if row is None:
                    if find_schedule(session, team.name) is not None:
                        raise InputError(
                            f"Team {team.name} has no schedule and a schedule of that name "
                            "belongs to another team: link one with teams[].schedule.",
                            field="team",
                        )
                    row = Schedule(name=team.name, team_id=team.id, spec={})
                    session.add(row)
                    session.flush()
            covering = catalog.ensure_person(session, ref=person)
            item = ScheduleOverride(
                schedule_id=row.id,
                person_id=covering.id,
                starts_at=start,
                ends_at=end,
                created_by=actor.label[:200],
            )
            session.add(item)
            session.flush()
            result = {
                "id": item.id,
                "schedule": row.name,
                "team": row.team.name if row.team else None,
                "person": covering.label,
                "ref": person_ref(covering),
                "starts_at": start.astimezone(now.tzinfo).isoformat(),
                "ends_at": end.astimezone(now.tzinfo).isoformat(),
                "created_by": actor.label,
            }
            audit.record(
                session,
                actor,
                action="oncall.override",
                target_type="schedule",
                target=row.name,
                changes={
                    "person": person_ref(covering),
                    "starts_at": result["starts_at"],
                    "ends_at": result["ends_at"],
                },
            )
    except access.Denial as denial:
        audit.record_denial(
            rt,
            actor,
            action="oncall.override",
            target_type="schedule",
            target=target[:255],
            detail=denial.reason,
        )
        raise denial.error from None
    return result
