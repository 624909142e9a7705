"""A quiet, current war room (issue 14, first part): the topic and bookmarks are written
only when they change, and the room sees one short line per state change, with mentions
built from ids and Slack date tokens."""

from __future__ import annotations

import re
from typing import Any

from tests.scenario.conftest import SEED_CHANNEL, wait_until
from tests.scenario.test_lifecycle import (  # noqa: F401 - `running` is a fixture
    ALICE,
    ONCALL,
    declare,
    running,
    settled,
)

DATE_TOKEN = re.compile(r"<!date\^\d+\^\{time\}\|[^>]+>")


def room_texts(fake: Any, room: str) -> list[str]:
    return [str(m.get("text") or "") for m in fake.messages(room)]


def test_topic_and_bookmarks_change_only_when_needed_and_the_room_sees_each_change(
    running,  # noqa: F811 - the fixture imported above
):
    server, slack, fake = running
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]

    slack.click("incident_ack", channel_id=SEED_CHANNEL)
    settled(server, short_id)
    assert slack.slash("note looking at the replicas", channel_id=room).status_code == 200
    assert slack.slash("severity SEV2", channel_id=room).status_code == 200
    assert slack.slash(f"role scribe <@{ONCALL}>", channel_id=room).status_code == 200
    assert slack.slash("resolve failover done", channel_id=room).status_code == 200
    settled(server, short_id)

    # Topics: one call per distinct topic, never the same topic twice in a row.
    topics = [str(c.args.get("topic")) for c in fake.calls if c.method == "conversations.setTopic"]
    assert topics and len(topics) == len(set(topics)), topics
    assert "RESOLVED" in topics[-1] and "SEV2_HIGH" in topics[-1]
    # Bookmarks are read once, when the room is set up, never on refreshes.
    assert [c.method for c in fake.calls].count("bookmarks.list") == 1

    # One line per state change, each with who (a mention) and when (a token).
    def lines() -> list[str] | None:
        found = [
            t
            for t in room_texts(fake, room)
            if any(
                k in t
                for k in (
                    "acknowledged the incident",
                    "changed the severity",
                    "is now *",
                    "resolved the incident",
                )
            )
        ]
        return found if len(found) >= 4 else None

    found = wait_until(lines, message="the war-room lines")

    def line(marker: str) -> str:
        [only] = [t for t in found if marker in t]
        return only

    ack, severity, role, resolved = (
        line("acknowledged the incident"),
        line("changed the severity"),
        line("is now *"),
        line("resolved the incident"),
    )
    assert f"<@{ALICE}> acknowledged the incident" in ack
    assert "SEV1_CRITICAL → *SEV2_HIGH*" in severity
    assert f"<@{ONCALL}> is now *scribe* (set by <@{ALICE}>)" in role
    assert f"<@{ALICE}> resolved the incident" in resolved
    assert all(DATE_TOKEN.search(line) for line in (ack, severity, role, resolved))
    # Running every refresh again (as a repair would) posts nothing and sets no topic.
    before = len(fake.messages(room))
    with server.rt.transaction() as session:
        from storage.models import OutboxItem

        for item in session.query(OutboxItem).filter(OutboxItem.incident_id == data["id"]):
            if item.kind == "refresh":
                item.state, item.attempts = "pending", 0
    server.rt.wake_outbox()
    settled(server, short_id)
    assert len(fake.messages(room)) == before
    assert len([c for c in fake.calls if c.method == "conversations.setTopic"]) == len(topics)


def test_the_declarer_is_shown_the_way_in_and_forms_carry_context(running):  # noqa: F811
    server, slack, fake = running
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]
    dm = fake.dm_channel(ALICE)
    assert dm is not None
    ready = [m for m in fake.messages(dm) if "war room of" in str(m.get("text"))]
    assert len(ready) == 1 and f"<#{room}>" in ready[0]["text"]

    fake.clear_calls()
    slack.click("incident_severity", channel_id=SEED_CHANNEL)
    view = fake.wait_for("views.open").args["view"]
    view = view if isinstance(view, dict) else __import__("json").loads(view)
    select = next(b for b in view["blocks"] if b.get("block_id") == "severity")["element"]
    assert select["initial_option"]["value"] == "SEV1_CRITICAL"
    assert short_id in str(view["blocks"][0]) and view["submit"]["text"] == "Change severity"
    answer = slack.submit_view(
        fake.last_view(), {"severity": "SEV2_HIGH", "reason": "only the replicas are down"}
    )
    assert answer.status_code == 200 and "errors" not in answer.text
    data = settled(server, short_id)
    assert any(
        e["type"] == "SEVERITY_CHANGE" and e["message"].endswith(": only the replicas are down")
        for e in data["timeline"]
    )
    fake.clear_calls()
    slack.click("incident_resolve", channel_id=SEED_CHANNEL)
    view = fake.wait_for("views.open").args["view"]
    view = view if isinstance(view, dict) else __import__("json").loads(view)
    assert view["submit"]["text"] == "Resolve incident" and short_id in str(view["blocks"][0])
