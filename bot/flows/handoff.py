"""Hand-off DMs: when a team's schedule hands off, the incoming and the outgoing person
each get a Slack DM with the team's open incidents.

A scheduler job (``bot.scheduler``, so one process at a time, under the lease) looks at
the hand-offs between its previous run and now (state: the ``oncall_handoffs`` app
setting; after a long stop, only the last day is caught up). Each DM is an ``oncall_dm``
outbox row keyed by schedule, hand-off instant, role and person, so a job re-run after a
crash, or by another replica, enqueues nothing twice. Teams without a schedule (only
``current_on_call``) have no hand-offs. Private incidents are counted, not named.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.domain.enums import OPEN_STATUSES
from bot.flows.oncall import compiled, schedule_of
from bot.oncall import shifts, who_is_on_call
from bot.outbox_kinds import OutboxKind, handoff_key
from bot.runtime import Runtime
from providers.text import slack_escape
from storage import catalog
from storage import outbox as outbox_store
from storage.models import Incident, Team

STATE_KEY = "oncall_handoffs"
CATCH_UP = timedelta(days=1)
TICK = timedelta(microseconds=1)


def summary(team: Team, incidents: list[Incident], role: str, other: str | None) -> str:
    if role == "incoming":
        head = f"📟 You are now on call for *{slack_escape(team.name)}*"
        head += f" (taking over from {slack_escape(other)})." if other else "."
    else:
        head = f"📟 Your on-call shift for *{slack_escape(team.name)}* is over"
        head += f": {slack_escape(other)} takes over." if other else "."
    public = [i for i in incidents if not i.private]
    private = len(incidents) - len(public)
    if not incidents:
        return head + "\nNo open incidents."
    lines = [
        f"• {i.short_id} {slack_escape(i.title[:150])} ({i.severity}, {i.status})" for i in public
    ]
    if private:
        lines.append(f"• and {private} private incident(s)")
    return head + f"\nOpen incidents ({len(incidents)}):\n" + "\n".join(lines)


def run_handoffs(rt: Runtime) -> int:
    """Enqueue the DMs of the hand-offs since the previous run. Returns how many."""
    now = rt.clock()
    count = 0
    with rt.transaction() as session:
        state = dict(catalog.get_app_setting(session, key=STATE_KEY))
        previous = state.get("checked_at")
        state["checked_at"] = now.isoformat()
        catalog.set_app_setting(session, key=STATE_KEY, value=state)
        if not previous:
            return 0
        since = max(datetime.fromisoformat(str(previous)), now - CATCH_UP)
        if now <= since:
            return 0
        for team in catalog.list_teams(session):
            row = schedule_of(session, team)
            if row is None:
                continue
            schedule = compiled(session, row, team=team, since=since - TICK)
            incidents: list[Incident] | None = None
            for shift in shifts(schedule, since, now + TICK):
                if not since < shift.start <= now:
                    continue
                outgoing = who_is_on_call(schedule, shift.start - TICK)
                if outgoing == shift.person:
                    continue
                if incidents is None:
                    incidents = list(
                        session.scalars(
                            select(Incident)
                            .where(Incident.team_id == team.id)
                            .where(Incident.status.in_(OPEN_STATUSES))
                            .order_by(Incident.id)
                        )
                    )
                people = (
                    ("incoming", shift.person, outgoing),
                    ("outgoing", outgoing, shift.person),
                )
                for role, ref, other in people:
                    if not ref:
                        continue
                    outbox_store.enqueue(
                        session,
                        kind=OutboxKind.ONCALL_DM,
                        idempotency_key=handoff_key(row.id, shift.start, role, ref),
                        recipient_kind="user",
                        recipient=ref,
                        payload={"text": summary(team, incidents, role, other)},
                        not_before=now,
                    )
                    count += 1
    return count
