"""Scheduled work against the running server and the fake Slack, with controlled time:
the job is called directly (the scheduler thread is off in tests), the server's clock is
moved forward instead of sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.flows import scheduled
from storage import incidents as store
from storage.models import ScheduledTask
from tests.scenario.conftest import SEED_CHANNEL, wait_until
from tests.scenario.test_lifecycle import (
    ONCALL,
    declare,
    replies,
    settled,
    timeline,
    top_level,
)
from tests.scenario.test_seed_guide import apply_seed_config


class Clock:
    """Real time plus an offset: the outbox keeps running, the job sees the future."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def running(tmp_path, database_url, start_server, driver, fake_slack):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    return server, driver(server), fake_slack


def reminders(fake, room):
    return [m for m in fake.messages(room) if "Time for a status update" in (m.get("text") or "")]


def test_reminder_in_the_war_room_snoozed_from_its_button(running):
    server, slack, fake = running
    clock = Clock()
    server.rt.clock = clock
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]
    slack.click("incident_ack", channel_id=SEED_CHANNEL)
    settled(server, short_id)

    clock.advance(minutes=31)
    assert scheduled.run_due_tasks(server.rt) == 1
    server.rt.wake_outbox()
    wait_until(lambda: reminders(fake, room), message="the reminder")
    settled(server, short_id)
    [reminder] = reminders(fake, room)
    assert short_id in reminder["text"]
    assert "reminder_snooze_60" in str(reminder["blocks"])

    slack.click("reminder_snooze_60", channel_id=room, message_ts=reminder["ts"])
    wait_until(
        lambda: any("snoozed for 60 min" in (m.get("text") or "") for m in fake.messages(room)),
        message="the reminder replaced by its snooze",
    )
    with server.rt.transaction() as session:
        task = session.query(ScheduledTask).filter_by(kind="reminder").one()
        assert 3500 < (task.due_at - clock()).total_seconds() <= 3600
    [snoozed] = timeline(settled(server, short_id), "REMINDER_SNOOZED")
    assert (snoozed["actor"], snoozed["source"]) == ("alice", "slack:button")

    clock.advance(minutes=59)
    assert scheduled.run_due_tasks(server.rt) == 0
    clock.advance(minutes=2)
    assert scheduled.run_due_tasks(server.rt) == 1
    server.rt.wake_outbox()
    wait_until(lambda: len(reminders(fake, room)) == 1 and settled(server, short_id), message="2nd")
    texts = [m["text"] for m in fake.messages(room)]
    assert sum("Time for a status update" in t for t in texts) == 1  # the first was replaced
    assert sum("snoozed for 60 min" in t for t in texts) == 1


def test_unacknowledged_incident_escalates_then_calls_the_channel(running):
    server, slack, fake = running
    clock = Clock()
    server.rt.clock = clock
    declare(slack, fake, severity="SEV3_MEDIUM")  # no war room, no reminders
    data = settled(server)
    short_id = data["short_id"]
    [announcement] = top_level(fake, SEED_CHANNEL)
    dm = fake.dm_channel(ONCALL)
    assert dm and len(fake.messages(dm)) == 1  # the declaration

    clock.advance(minutes=16)
    assert scheduled.run_due_tasks(server.rt) == 1
    server.rt.wake_outbox()
    wait_until(lambda: len(fake.messages(dm)) == 2, message="the on-call's escalation DM")
    assert fake.messages(dm)[1]["text"].startswith("🚨 Escalated by IMAS")
    data = settled(server, short_id)
    assert any(
        r.startswith("🚨 Escalated by IMAS")
        for r in replies(fake, SEED_CHANNEL, announcement["ts"])
    )
    [escalation] = timeline(data, "ESCALATION")
    assert (escalation["actor"], escalation["source"]) == ("IMAS", "scheduler")

    clock.advance(minutes=15)
    assert scheduled.run_due_tasks(server.rt) == 1
    server.rt.wake_outbox()
    wait_until(lambda: len(top_level(fake, SEED_CHANNEL)) == 2, message="the @here message")
    here = top_level(fake, SEED_CHANNEL)[1]
    assert here["text"].startswith("<!here> 🚨") and short_id in here["text"]
    assert len(timeline(settled(server, short_id), "ESCALATION")) == 2

    # Acknowledged now: nothing more, ever.
    slack.click("incident_ack", channel_id=SEED_CHANNEL, message_ts=announcement["ts"])
    settled(server, short_id)
    clock.advance(hours=3)
    assert scheduled.run_due_tasks(server.rt) == 0


def test_resolved_war_room_is_archived_with_a_final_summary(running):
    server, slack, fake = running
    clock = Clock()
    server.rt.clock = clock
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]
    assert "RESOLVED" in slack.slash("resolve Replaced the failed node", channel_id=room).text
    settled(server, short_id)

    clock.advance(hours=23)
    scheduled.run_due_tasks(server.rt)
    assert not fake.channel(room).is_archived
    clock.advance(hours=1, minutes=1)
    assert scheduled.run_due_tasks(server.rt) == 1
    server.rt.wake_outbox()
    wait_until(lambda: fake.channel(room).is_archived, message="the archived war room")
    data = settled(server, short_id)
    last = fake.messages(room)[-1]["text"]
    assert last.startswith(f"🗄️ *{short_id} is resolved*") and "Replaced the failed node" in last
    [archived] = timeline(data, "ARCHIVED")
    assert (archived["actor"], archived["source"]) == ("IMAS", "scheduler")
    with server.rt.transaction() as session:
        assert store.get_incident(session, ref=short_id).archived_at is not None


def test_two_servers_on_one_database_send_each_reminder_once(running, start_server):
    first, slack, fake = running
    second = start_server()
    clock = Clock()
    first.rt.clock = second.rt.clock = clock
    declare(slack, fake)
    data = settled(first)
    short_id, room = data["short_id"], data["war_room_channel_id"]
    slack.click("incident_ack", channel_id=SEED_CHANNEL)
    settled(first, short_id)

    for number in range(1, 4):
        # Time jumps only while nothing is in flight: a jump past the outbox leases would
        # hand a step still running to the other server, which no real clock does.
        settled(first, short_id)
        clock.advance(minutes=31)
        fired: list[int] = []
        barrier = threading.Barrier(4)

        def tick(server) -> None:
            barrier.wait()
            fired.append(scheduled.run_due_tasks(server.rt))
            server.rt.wake_outbox()

        threads = [threading.Thread(target=tick, args=(s,)) for s in (first, second) * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(fired) == 1
        wait_until(lambda: len(reminders(fake, room)) >= number, message=f"reminder {number}")
    settled(first, short_id)
    assert len(reminders(fake, room)) == 3
