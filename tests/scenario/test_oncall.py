"""On-call from Slack through the running server: ``/oncall``, ``/incident oncall``,
an override, and paging the team reaching whoever the schedule says (issue 13)."""

from __future__ import annotations

from tests.scenario.conftest import wait_until
from tests.scenario.test_lifecycle import BOB, declare, running, settled  # noqa: F401

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
