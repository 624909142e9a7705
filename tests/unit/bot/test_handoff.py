"""Hand-off DMs with a controlled clock: each hand-off DMs the incoming and outgoing
person once (re-runs and a second process add nothing), delivered through the Slack
stand-in, open incidents listed, private ones only counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot import config_file
from bot.domain.actor import Actor
from bot.flows.declare import DeclareInput, declare
from bot.flows.handoff import run_handoffs
from bot.runtime import Runtime
from bot.steps import make_worker
from storage.models import OutboxItem
from tests.conftest import BOT_TOKEN

CONFIG = """teams:
  - name: SRE Core
    slack_channel_id: C0123456789
services:
  - name: redis-prod
    owner_team: SRE Core
schedules:
  - name: sre
    team: SRE Core
    timezone: Europe/Paris
    layers:
      - {members: [U0ALICE01, U0BOB0001], rotation: daily, handoff: "09:00", start: 2026-03-01}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def dm_rows(rt: Runtime) -> list[OutboxItem]:
    with rt.transaction() as session:
        return list(
            session.scalars(
                select(OutboxItem).where(OutboxItem.kind == "oncall_dm").order_by(OutboxItem.id)
            )
        )


def test_handoff_dms_once_each_through_slack(make_settings, fake_slack):
    fake_slack.add_user("U0ALICE01", "alice", email="alice@example.com")
    fake_slack.add_user("U0BOB0001", "bob", email="bob@example.com")
    settings = make_settings(slack_bot_token=BOT_TOKEN, slack_api_url=fake_slack.url)
    clock = Clock(datetime(2026, 3, 10, 7, 30, tzinfo=UTC))  # 08:30 Paris
    rt, replica = Runtime.build(settings), Runtime.build(settings)
    rt.clock = replica.clock = clock
    with rt.transaction() as session:
        config_file.apply(session, rt, config_file.parse(CONFIG, {}))
    actor = Actor(label="alice", source="slack", slack_user_id="U0ALICE01")
    for title, private in (("Redis down", False), ("Secret thing", True)):
        declare(
            rt,
            data=DeclareInput(
                title=title, service="redis-prod", severity="SEV2_HIGH", private=private
            ),
            actor=actor,
        )
    assert run_handoffs(rt) == 0  # first run: remembers when it looked
    clock.now += timedelta(minutes=29)
    assert run_handoffs(rt) == 0  # 08:59: no hand-off yet
    clock.now += timedelta(minutes=2)  # 09:01 Paris: hand-off
    assert run_handoffs(rt) == 2
    assert run_handoffs(rt) == 0 and run_handoffs(replica) == 0
    rows = dm_rows(rt)
    # 2026-03-10 is hand-off 9 since 2026-03-01 (odd: Bob): Alice hands over to Bob.
    assert [(r.recipient, r.idempotency_key.split(":")[3]) for r in rows] == [
        ("U0BOB0001", "incoming"),
        ("U0ALICE01", "outgoing"),
    ]
    incoming = rows[0].payload["text"]
    assert incoming.startswith(
        "📟 You are now on call for *SRE Core* (taking over from U0ALICE01)."
    )
    assert "Redis down" in incoming and "Secret thing" not in incoming
    assert "and 1 private incident(s)" in incoming

    # Delivered as DMs through the stand-in.
    worker = make_worker(rt)
    while worker.run_once():
        pass
    assert [r.state for r in dm_rows(rt)] == ["done", "done"]
    assert any(
        m["text"].startswith("📟 You are now on call")
        for m in fake_slack.messages(fake_slack.dm_channel("U0BOB0001"))
    )
    assert any(
        m["text"].startswith("📟 Your on-call shift for *SRE Core* is over")
        for m in fake_slack.messages(fake_slack.dm_channel("U0ALICE01"))
    )

    # After a long stop only the last day is caught up: one hand-off per day, 2 DMs each.
    clock.now += timedelta(days=5)
    assert run_handoffs(replica) == 2
    rt.close()
    replica.close()
