"""On-call from Slack through the running server: ``/oncall``, ``/incident oncall``,
an override, paging the team reaching whoever the schedule says, and a SEV1 escalation
policy stepping through two servers on one database until acknowledged (issue 13)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

from bot import config_file
from bot.flows import scheduled
from tests.scenario.conftest import SEED_CHANNEL, wait_until
from tests.scenario.test_lifecycle import (  # noqa: F401 - running is a fixture
    BOB,
    declare,
    running,
    settled,
    timeline,
    top_level,
)

ALICE = "U0ALICE01"


def test_oncall_commands_override_and_page(running):  # noqa: F811
    server, slack, fake = running
    answer = slack.slash("", command="/oncall").text
    assert answer.startswith("*On call*") and "*SRE Core*" in answer
    assert "oncall@example.com" in answer or "<@U0ONCALL1>" in answer

    # Bad input: an ephemeral warning, nothing written.
    assert "not a duration" in slack.slash(f"override <@{BOB}|bob> soon", command="/oncall").text
    assert "No team named 'Nope'" in slack.slash("Nope", command="/oncall").text
    assert "Usage" in slack.slash("oncall override bob 2h").text

    # Bob covers for two hours (the only team: no team name needed).
    answer = slack.slash(f"oncall override <@{BOB}|bob> 2h", user_id=ALICE).text
    assert answer.startswith(f"📟 <@{BOB}> is on call for *SRE Core*")
    for text in (slack.slash("", command="/oncall").text, slack.slash("oncall SRE Core").text):
        assert f"*SRE Core*: <@{BOB}> until <!date^" in text

    # App Home shows who is on call too.
    slack.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE01", "tab": "home"})
    wait_until(lambda: ALICE in fake.home_views, message="Alice's home")
    home = str(fake.home_views[ALICE]["blocks"])
    assert "*On call*" in home and f"*SRE Core*: <@{BOB}>" in home

    # Paging the team reaches Bob, not the static current_on_call.
    declare(slack, fake)
    data = settled(server)
    room = data["war_room_channel_id"]
    answer = slack.slash("page SRE Core redis is on fire", channel_id=room)
    assert "on call for SRE Core" in answer.text and "bob" in answer.text.lower()
    wait_until(
        lambda: (
            fake.dm_channel(BOB)
            and any("📟 Paged by alice" in m["text"] for m in fake.messages(fake.dm_channel(BOB)))
        ),
        message="Bob paged by DM",
    )


POLICY_CONFIG = """
teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    email: sre@example.com
    current_on_call: oncall@example.com
    members: [alice@example.com]
    escalation_policy: {SEV1_CRITICAL: sev1}
schedules:
  - name: secondary
    layers:
      - {members: [U0SECOND1], rotation: weekly}
escalation_policies:
  - name: sev1
    steps:
      - {delay_minutes: 0, targets: [oncall]}
      - {delay_minutes: 1, targets: [boss@example.com]}
      - {delay_minutes: 2, targets: ["schedule:secondary"]}
      - {delay_minutes: 3, targets: ["@here"]}
"""


def test_sev1_policy_steps_fire_once_across_two_servers_until_acknowledged(
    running,  # noqa: F811
    start_server,
):
    first, slack, fake = running
    fake.add_user("U0SECOND1", "second", email="second@example.com")
    fake.add_user("U0BOSS001", "boss", email="boss@example.com")
    with first.rt.transaction() as session:
        config_file.apply(session, first.rt, config_file.parse(POLICY_CONFIG, {}))
    second = start_server()
    offset = [timedelta()]

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    first.rt.clock = second.rt.clock = clock
    declare(slack, fake)  # SEV1: the policy's first step is due at once
    data = settled(first)
    short_id = data["short_id"]

    def tick_both() -> int:
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
        settled(first, short_id)
        return sum(fired)

    def dms(user: str) -> list[str]:
        channel = fake.dm_channel(user)
        return [m["text"] for m in fake.messages(channel)] if channel else []

    assert tick_both() == 1  # step 1: the on-call, through the router
    assert any(t.startswith("🚨 Escalated by IMAS") for t in dms("U0ONCALL1"))
    assert tick_both() == 0  # step 2 is one minute away
    for minutes, who in ((1, "U0BOSS001"), (2, "U0SECOND1")):
        offset[0] += timedelta(minutes=minutes)
        assert tick_both() == 1
        wait_until(lambda who=who: dms(who), message=f"the DM to {who}")
    assert len(dms("U0SECOND1")) == 1 and len(dms("U0BOSS001")) == 1

    # The secondary acknowledges from the announcement: nothing more on either server.
    [announcement] = top_level(fake, SEED_CHANNEL)
    slack.click(
        "incident_ack", channel_id=SEED_CHANNEL, message_ts=announcement["ts"], user_id="U0SECOND1"
    )
    data = settled(first, short_id)
    assert data["status"] == "ACKNOWLEDGED"
    offset[0] += timedelta(minutes=10)
    tick_both()  # reminders may fire; escalation may not
    data = settled(first, short_id)
    paged = [e["message"] for e in timeline(data, "ESCALATION")]
    steps = [
        int(m.group(1))
        for m in map(re.compile(r"escalation step (\d+) of sev1").search, paged)
        if m
    ]
    assert steps == [1, 2, 3]
    assert not any("<!here>" in (m.get("text") or "") for m in top_level(fake, SEED_CHANNEL))
    assert "boss@example.com" in paged[1] and "on call for secondary" in paged[2]
