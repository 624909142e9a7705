"""Scheduled tasks with controlled time: reminders, snoozes, escalations, archiving;
restarts and two processes on one database (SQLite here, PostgreSQL in CI)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot import config_file
from bot.domain.actor import Actor
from bot.flows import lifecycle, scheduled
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from bot.scheduler import JOBS, run_scheduled_tasks
from storage import catalog
from storage import incidents as incident_store
from storage.models import Incident, OutboxItem, ScheduledTask

ALICE = Actor(label="alice", source="slack", slack_user_id="U0ALICE01", via="button")
CONFIG = """
teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    current_on_call: oncall@example.com
    escalation_timeout_minutes: 15
services:
  - name: redis-prod
    owner_team: SRE Core
providers:
  - name: Slack Production
    type: SLACK
    config: {bot_token: xoxb-unit-test}
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_rt(make_settings: Any, clock: Clock) -> Iterator[Callable[[], Runtime]]:
    """Runtimes ("processes") on the one test database, sharing the test clock."""
    built: list[Runtime] = []

    def make() -> Runtime:
        rt = Runtime.build(make_settings())
        rt.clock = clock
        built.append(rt)
        return rt

    yield make
    for rt in built:
        rt.close()


@pytest.fixture
def rt(make_rt: Callable[[], Runtime]) -> Runtime:
    runtime = make_rt()
    configure(runtime, CONFIG)
    return runtime


def configure(rt: Runtime, text: str) -> None:
    document = config_file.parse(text, {})
    with rt.transaction() as session:
        config_file.apply(session, rt, document)


def new_incident(rt: Runtime, severity: str = "SEV1_CRITICAL", **extra: Any) -> str:
    incident, _created = declare(
        rt,
        data=DeclareInput(title="Redis down", service="redis-prod", severity=severity, **extra),
        actor=ALICE,
    )
    return incident.short_id


def task(rt: Runtime, short_id: str, kind: str) -> ScheduledTask | None:
    with rt.transaction() as session:
        incident = incident_store.get_incident(session, ref=short_id)
        assert incident is not None
        return scheduled.get_task(session, incident_id=incident.id, kind=kind)


def rows(rt: Runtime, prefix: str) -> list[OutboxItem]:
    with rt.transaction() as session:
        return list(
            session.scalars(
                select(OutboxItem)
                .where(OutboxItem.idempotency_key.startswith(prefix))
                .order_by(OutboxItem.id)
            )
        )


def events(rt: Runtime, short_id: str, type_: str) -> list[Any]:
    with rt.transaction() as session:
        incident = incident_store.get_incident(session, ref=short_id)
        assert incident is not None
        return [
            e for e in incident_store.timeline(session, incident_id=incident.id) if e.type == type_
        ]


def change(rt: Runtime, short_id: str, status: str, **extra: Any) -> None:
    with rt.transaction() as session:
        incident = lifecycle.get_or_404(session, short_id)
        lifecycle.change_status(session, rt, incident=incident, status=status, actor=ALICE, **extra)


def minutes_until(clock: Clock, when: datetime) -> float:
    return (when - clock.now).total_seconds() / 60


# -- tasks follow the incident ---------------------------------------------------------


def test_declaration_arms_escalation_and_reminder(rt, clock):
    sev1 = new_incident(rt)
    escalation, reminder = task(rt, sev1, "escalation"), task(rt, sev1, "reminder")
    assert escalation and escalation.state == "scheduled"
    assert minutes_until(clock, escalation.due_at) == pytest.approx(15)
    assert reminder and minutes_until(clock, reminder.due_at) == pytest.approx(30)
    assert task(rt, sev1, "archive") is None

    sev3 = new_incident(rt, "SEV3_MEDIUM")
    assert task(rt, sev3, "reminder") is None  # SEV3: no reminders by default
    configure(rt, CONFIG + "reminders: {SEV3_MEDIUM: 10}\n")
    sev3b = new_incident(rt, "SEV3_MEDIUM")
    assert minutes_until(clock, task(rt, sev3b, "reminder").due_at) == pytest.approx(10)


def test_status_and_severity_changes_move_the_tasks(rt, clock):
    short_id = new_incident(rt)
    change(rt, short_id, "ACKNOWLEDGED")
    assert task(rt, short_id, "escalation").state == "cancelled"
    with rt.transaction() as session:
        incident = lifecycle.get_or_404(session, short_id)
        lifecycle.change_severity(session, rt, incident=incident, severity="SEV2_HIGH", actor=ALICE)
    reminder = task(rt, short_id, "reminder")
    assert reminder.state == "scheduled" and minutes_until(clock, reminder.due_at) == pytest.approx(
        60
    )
    with rt.transaction() as session:
        incident = lifecycle.get_or_404(session, short_id)
        lifecycle.change_severity(session, rt, incident=incident, severity="SEV4_LOW", actor=ALICE)
    assert task(rt, short_id, "reminder").state == "cancelled"

    clock.advance(minutes=5)
    change(rt, short_id, "RESOLVED", summary="fixed")
    archive = task(rt, short_id, "archive")
    assert archive.state == "scheduled" and minutes_until(clock, archive.due_at) == pytest.approx(
        24 * 60
    )
    change(rt, short_id, "TRIGGERED")  # reopen: no archiving, no second escalation
    assert task(rt, short_id, "archive").state == "cancelled"
    assert task(rt, short_id, "escalation").state == "cancelled"


def test_a_status_update_resets_the_reminder(rt, clock):
    short_id = new_incident(rt)
    clock.advance(minutes=20)
    with rt.transaction() as session:
        incident = lifecycle.get_or_404(session, short_id)
        lifecycle.post_status_update(
            session, rt, incident=incident, text="Failing over", actor=ALICE, next_update_minutes=45
        )
    assert minutes_until(clock, task(rt, short_id, "reminder").due_at) == pytest.approx(45)
    [post] = rows(rt, "war_room_post:")
    assert post.recipient == "war_room" and "Failing over" in post.payload["text"]


# -- reminders ---------------------------------------------------------------------------


def test_the_scheduler_job_is_registered():
    assert run_scheduled_tasks in JOBS


def test_reminder_fires_once_when_due_then_every_interval(rt, clock):
    short_id = new_incident(rt)
    change(rt, short_id, "ACKNOWLEDGED")  # no escalation in the way
    clock.advance(minutes=29)
    assert scheduled.run_due_tasks(rt) == 0
    clock.advance(minutes=2)
    assert scheduled.run_due_tasks(rt) == 1
    assert scheduled.run_due_tasks(rt) == 0  # once
    [post] = rows(rt, "reminder:")
    assert post.kind == "slack_post" and post.recipient == "war_room"
    assert "Time for a status update" in post.payload["text"]
    actions = post.payload["blocks"][-1]["elements"]
    assert [a["action_id"] for a in actions] == [
        "incident_update",
        "reminder_snooze_30",
        "reminder_snooze_60",
        "reminder_snooze_120",
    ]
    reminder = task(rt, short_id, "reminder")
    assert reminder.state == "scheduled" and minutes_until(clock, reminder.due_at) == pytest.approx(
        30
    )
    clock.advance(minutes=30)
    assert scheduled.run_due_tasks(rt) == 1
    assert len(rows(rt, "reminder:")) == 2

    change(rt, short_id, "RESOLVED", summary="ok")
    clock.advance(hours=1)
    scheduled.run_due_tasks(rt)
    assert len(rows(rt, "reminder:")) == 2  # none after the resolution


def test_snooze_moves_the_reminder(rt, clock):
    short_id = new_incident(rt)
    change(rt, short_id, "ACKNOWLEDGED")
    clock.advance(minutes=10)
    with rt.transaction() as session:
        incident = lifecycle.get_or_404(session, short_id)
        due = scheduled.snooze(session, rt, incident=incident, minutes=60, actor=ALICE)
    assert minutes_until(clock, due) == pytest.approx(60)
    clock.advance(minutes=25)  # the original due time (30) has passed
    assert scheduled.run_due_tasks(rt) == 0
    clock.advance(minutes=36)
    assert scheduled.run_due_tasks(rt) == 1
    [snoozed] = events(rt, short_id, "REMINDER_SNOOZED")
    assert (snoozed.actor, snoozed.source) == ("alice", "slack:button")
    change(rt, short_id, "RESOLVED", summary="ok")
    with rt.transaction() as session, pytest.raises(lifecycle.ConflictError):
        incident = lifecycle.get_or_404(session, short_id)
        scheduled.snooze(session, rt, incident=incident, minutes=30, actor=ALICE)


def test_a_restart_neither_loses_nor_doubles_a_reminder(rt, make_rt, clock):
    short_id = new_incident(rt)
    change(rt, short_id, "ACKNOWLEDGED")
    rt.close()  # the process stops; the reminder comes due while it is down
    clock.advance(minutes=45)
    after_restart = make_rt()
    assert scheduled.run_due_tasks(after_restart) == 1
    assert scheduled.run_due_tasks(make_rt()) == 0  # yet another restart: not again
    assert len(rows(after_restart, "reminder:")) == 1


def test_a_claim_whose_process_died_is_fired_once_after_its_lease(rt, make_rt, clock):
    short_id = new_incident(rt)
    change(rt, short_id, "ACKNOWLEDGED")
    clock.advance(minutes=31)
    [stale] = scheduled.claim_due(rt, now=clock())  # ...and the process dies here
    other = make_rt()
    assert scheduled.run_due_tasks(other) == 0  # still leased
    clock.advance(seconds=scheduled.LEASE_SECONDS + 1)
    assert scheduled.run_due_tasks(other) == 1
    assert scheduled.fire(rt, stale) is False  # the old claim is void
    assert len(rows(rt, "reminder:")) == 1
    assert task(rt, short_id, "reminder").runs == 2


def test_two_processes_never_send_the_same_reminder_twice(rt, make_rt, clock):
    ids = [new_incident(rt) for _ in range(4)]
    for short_id in ids:
        change(rt, short_id, "ACKNOWLEDGED")
    clock.advance(minutes=31)
    first, second = rt, make_rt()

    # Sequentially: the second process finds nothing left.
    assert scheduled.run_due_tasks(first, limit=2) == 2
    assert scheduled.run_due_tasks(second) == 2
    assert scheduled.run_due_tasks(first) + scheduled.run_due_tasks(second) == 0

    # Concurrently: threads of both processes race for the next round.
    clock.advance(minutes=31)
    fired: list[int] = []
    barrier = threading.Barrier(8)

    def worker(runtime: Runtime) -> None:
        barrier.wait()
        fired.append(scheduled.run_due_tasks(runtime, limit=1))
        fired.append(scheduled.run_due_tasks(runtime))

    threads = [threading.Thread(target=worker, args=(p,)) for p in [first, second] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(fired) == 4
    posts = rows(rt, "reminder:")
    assert len(posts) == 8 and len({p.idempotency_key for p in posts}) == 8
    with rt.transaction() as session:
        incident_ids = {i.id for i in session.scalars(select(Incident))}
        per_incident = {
            iid: len([p for p in posts if p.incident_id == iid]) for iid in incident_ids
        }
    assert set(per_incident.values()) == {2}


# -- escalation --------------------------------------------------------------------------


def test_unacknowledged_incident_escalates_to_on_call_then_channel(rt, clock):
    short_id = new_incident(rt, "SEV3_MEDIUM")
    clock.advance(minutes=14)
    assert scheduled.run_due_tasks(rt) == 0
    clock.advance(minutes=2)
    assert scheduled.run_due_tasks(rt) == 1
    escalated = [r for r in rows(rt, "notify:") if r.event == "escalated"]
    assert {(r.recipient_kind, r.recipient) for r in escalated} >= {
        ("user", "oncall@example.com"),
        ("channel", "C0123456789"),
    }
    [first] = events(rt, short_id, "ESCALATION")
    assert re.fullmatch(
        r"Not acknowledged after 1[56] min: escalated to the on-call of SRE Core "
        r"\(oncall@example.com\)",
        first.message,
    )
    assert (first.actor, first.source) == ("IMAS", "scheduler")

    clock.advance(minutes=15)
    assert scheduled.run_due_tasks(rt) == 1
    [here] = rows(rt, "escalation:")
    assert here.recipient == "C0123456789" and here.payload["text"].startswith("<!here>")
    assert len(events(rt, short_id, "ESCALATION")) == 2
    assert task(rt, short_id, "escalation").state == "done"
    with rt.transaction() as session:
        assert lifecycle.get_or_404(session, short_id).escalation_level == 2
    clock.advance(hours=2)
    assert scheduled.run_due_tasks(rt) == 0


def test_acknowledged_in_time_never_escalates(rt, clock):
    short_id = new_incident(rt, "SEV3_MEDIUM")
    clock.advance(minutes=10)
    change(rt, short_id, "ACKNOWLEDGED")
    clock.advance(minutes=30)
    assert scheduled.run_due_tasks(rt) == 0
    assert events(rt, short_id, "ESCALATION") == []


def test_configured_escalation_levels(rt, clock):
    configure(
        rt,
        CONFIG.replace(
            "    escalation_timeout_minutes: 15\n",
            "    escalation_timeout_minutes: 15\n"
            "    escalation_levels:\n"
            "      - {target: boss@example.com, delay_minutes: 5}\n"
            "      - {target: '@here', delay_minutes: 10}\n",
        ),
    )
    short_id = new_incident(rt, "SEV3_MEDIUM", private=True)
    clock.advance(minutes=16)
    assert scheduled.run_due_tasks(rt) == 1
    clock.advance(minutes=5)
    assert scheduled.run_due_tasks(rt) == 1
    boss = [r for r in rows(rt, "notify:") if r.recipient == "boss@example.com"]
    assert len(boss) == 1 and boss[0].event == "escalated"
    clock.advance(minutes=10)
    assert scheduled.run_due_tasks(rt) == 1
    messages = [e.message for e in events(rt, short_id, "ESCALATION")]
    assert messages[1].endswith("escalated to boss@example.com")
    assert messages[2].endswith("channel escalation skipped (private incident)")
    assert rows(rt, "escalation:") == []  # a private incident is not shouted in a channel


# -- archiving ---------------------------------------------------------------------------


def test_resolved_war_room_is_archived_after_the_delay(rt, clock):
    configure(rt, CONFIG + "war_room: {archive_after_hours: 2}\n")
    short_id = new_incident(rt)
    with rt.transaction() as session:
        lifecycle.get_or_404(session, short_id).war_room_channel_id = "C0WARROOM1"
    change(rt, short_id, "RESOLVED", summary="done")
    clock.advance(minutes=119)
    scheduled.run_due_tasks(rt)
    assert rows(rt, "archive:") == []
    clock.advance(minutes=2)
    assert scheduled.run_due_tasks(rt) == 1
    [archive] = rows(rt, "archive:")
    assert archive.kind == "archive"
    assert task(rt, short_id, "archive").state == "done"
    assert scheduled.run_due_tasks(rt) == 0


def test_reopening_cancels_the_archiving(rt, clock):
    short_id = new_incident(rt)
    with rt.transaction() as session:
        lifecycle.get_or_404(session, short_id).war_room_channel_id = "C0WARROOM1"
    change(rt, short_id, "RESOLVED", summary="done")
    clock.advance(hours=1)
    change(rt, short_id, "TRIGGERED")
    clock.advance(hours=30)
    scheduled.run_due_tasks(rt)
    assert rows(rt, "archive:") == []


def test_settings_fall_back_to_defaults(rt):
    with rt.transaction() as session:
        assert scheduled.reminder_minutes(session, "SEV1_CRITICAL") == 30
        assert scheduled.reminder_minutes(session, "SEV2_HIGH") == 60
        assert scheduled.reminder_minutes(session, "SEV4_LOW") == 0
        assert scheduled.archive_after_hours(session) == 24
        catalog.set_app_setting(session, key="reminders", value={"SEV1_CRITICAL": "x"})
        assert scheduled.reminder_minutes(session, "SEV1_CRITICAL") == 0
