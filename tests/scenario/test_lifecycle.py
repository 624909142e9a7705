"""Running an incident from Slack, through signed requests only (issue 5): buttons,
modals, subcommands, 📌 reactions, App Home, the message shortcut, private incidents,
repair and doctor — against the fake Slack Web API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from imas_standins.slack_api import FakeSlack
from imas_standins.slack_driver import SlackDriver

from bot.presenter import incident_json
from handlers.cli import main
from handlers.server import Server
from storage import incidents as store
from storage import outbox as outbox_store
from storage.models import Incident, ScheduledTask
from tests.scenario.conftest import SEED_CHANNEL, wait_until
from tests.scenario.test_seed_guide import apply_seed_config

ALICE, BOB, ONCALL = "U0ALICE01", "U0BOB0001", "U0ONCALL1"


# -- helpers shared with test_scheduled ------------------------------------------------


def incident_data(server: Server, short_id: str | None = None) -> dict[str, Any] | None:
    rt = server.rt
    with rt.transaction() as session:
        if short_id is None:
            _n, rows = store.list_incidents(session, limit=1)
            incident = rows[0] if rows else None
        else:
            incident = store.get_incident(session, ref=short_id)
        return incident_json(session, rt, incident, detail=True) if incident else None


def settled(server: Server, short_id: str | None = None) -> dict[str, Any]:
    """Wait until every outbox row of the incident is done; returns its JSON."""

    def check() -> dict[str, Any] | None:
        data = incident_data(server, short_id)
        if data is None:
            return None
        states = {d["state"] for d in data["deliveries"]}
        assert "dead" not in states, data["deliveries"]
        return data if states <= {"done"} else None

    result: dict[str, Any] = wait_until(check, message="the outbox to settle")
    return result


def declare(driver: SlackDriver, fake: FakeSlack, *, user_id: str = ALICE, **values: Any) -> None:
    fake.clear_calls()
    assert driver.slash("", user_id=user_id).status_code == 200
    fake.wait_for("views.open")
    answer = driver.submit_view(
        fake.last_view(),
        {
            "title": "Redis cluster down",
            "description": "Timeouts on every node",
            "service": "redis-prod",
            "severity": "SEV1_CRITICAL",
            **values,
        },
        user_id=user_id,
    )
    assert answer.status_code == 200 and "errors" not in answer.text, answer.text


def top_level(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [
        m
        for m in fake.messages(channel)
        if m.get("user") == fake.bot_user_id and m.get("thread_ts") in (None, m["ts"])
    ]


def replies(fake: FakeSlack, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in fake.messages(channel) if m.get("thread_ts") == ts and m["ts"] != ts]


def timeline(data: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    return [e for e in data["timeline"] if not types or e["type"] in types]


def fields_text(message: dict[str, Any]) -> str:
    return str(message.get("blocks"))


def make_manager(server: Any, slack_user_id: str, folder: Path) -> None:
    """``permissions: people: {<id>: manager}`` applied as an operator would."""
    path = folder / "permissions.yml"
    path.write_text(f"permissions:\n  people:\n    {slack_user_id}: manager\n")
    result = CliRunner().invoke(
        main,
        ["config", "apply", str(path)],
        env={
            "IMAS_DATABASE_URL": server.rt.settings.database_url,
            "IMAS_SECRET_KEY": "test-secret-key",
        },
    )
    assert result.exit_code == 0, result.output


@pytest.fixture
def running(tmp_path, database_url, start_server, driver, fake_slack):
    """The seed configuration, a running server, a driver, Bob in the workspace."""
    apply_seed_config(tmp_path, database_url)
    fake_slack.add_user(BOB, "bob", email="bob@example.com", real_name="Bob Example")
    server = start_server()
    return server, driver(server), fake_slack


# -- the acceptance scenario -----------------------------------------------------------


def test_declare_ack_severity_note_pin_resolve(running):
    server, slack, fake = running
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]
    [announcement] = top_level(fake, SEED_CHANNEL)
    ann_ts = announcement["ts"]
    with server.rt.transaction() as session:
        summary_ts = store.get_incident(session, ref=short_id).war_room_summary_ts
    assert summary_ts and room

    # 1. Acknowledge, from the announcement's button.
    fake.clear_calls()
    assert slack.click("incident_ack", channel_id=SEED_CHANNEL).status_code == 200
    data = settled(server, short_id)
    assert data["status"] == "ACKNOWLEDGED" and data["acknowledged_at"]
    acknowledged_at = data["acknowledged_at"]
    ack_event = timeline(data, "STATUS_CHANGE")[-1]
    assert ack_event["message"] == "Status changed from TRIGGERED to ACKNOWLEDGED by alice"
    assert (ack_event["actor"], ack_event["source"]) == ("alice", "slack:button")
    fake.wait_for("chat.update", channel=SEED_CHANNEL, ts=ann_ts)
    fake.wait_for("chat.update", channel=room, ts=summary_ts)
    assert "ACKNOWLEDGED" in fake.channel(room).topic
    assert "Acknowledge" not in str(top_level(fake, SEED_CHANNEL)[0]["blocks"])
    with server.rt.transaction() as session:
        escalation = session.query(ScheduledTask).filter_by(kind="escalation").one()
        assert escalation.state == "cancelled"

    # A second click is refused, clearly, and changes nothing.
    slack.click("incident_ack", value=short_id, channel_id=room, message_ts=summary_ts)
    wait_until(
        lambda: any("cannot acknowledge" in str(r["body"]) for r in fake.responses),
        message="the refusal",
    )
    assert incident_data(server, short_id)["acknowledged_at"] == acknowledged_at

    # 2. Severity, from the war-room summary's button and its modal.
    fake.clear_calls()
    slack.click("incident_severity", channel_id=room, message_ts=summary_ts)
    fake.wait_for("views.open")
    assert slack.submit_view(fake.last_view(), {"severity": "SEV2_HIGH"}).text in ("", "{}")
    data = settled(server, short_id)
    assert data["severity"] == "SEV2_HIGH"
    sev_event = timeline(data, "SEVERITY_CHANGE")[-1]
    assert (sev_event["actor"], sev_event["source"]) == ("alice", "slack:modal")
    assert "SEV2_HIGH" in fake.channel(room).topic

    # 3. A note, by command in the war room: timeline and a post in the room.
    answer = slack.slash("note Primary redis-1 failed over to redis-2", channel_id=room)
    assert answer.status_code == 200 and "Note added" in answer.text
    data = settled(server, short_id)
    note = timeline(data, "NOTE")[-1]
    assert note["message"] == "Primary redis-1 failed over to redis-2"
    assert (note["actor"], note["source"]) == ("alice", "slack:command")
    assert any("*Note* by alice" in m["text"] for m in fake.messages(room))

    # 4. 📌 on the on-call's message: the timeline gets it at its own time, by its author.
    pinned_ts = fake.post_as_user(room, ONCALL, "redis-2 is primary, replication lag 0")
    reaction = {
        "type": "reaction_added",
        "user": ALICE,
        "reaction": "pushpin",
        "item_user": ONCALL,
        "item": {"type": "message", "channel": room, "ts": pinned_ts},
    }
    assert slack.event(reaction).status_code == 200
    assert slack.event({**reaction, "user": BOB}).status_code == 200  # pinned once
    wait_until(
        lambda: any(
            e["message"] == "redis-2 is primary, replication lag 0"
            for e in timeline(incident_data(server, short_id) or {}, "PINNED")
        ),
        message="the pinned text",
    )
    data = settled(server, short_id)
    [pin] = timeline(data, "PINNED")
    assert datetime.fromisoformat(pin["at"]) == datetime.fromtimestamp(float(pinned_ts), UTC)
    assert (pin["actor"], pin["source"]) == ("oncall@example.com", "slack:reaction")
    history = fake.calls
    assert any(
        c.method == "conversations.history"
        and c.args.get("latest") == pinned_ts
        and str(c.args.get("inclusive")).lower() in ("1", "true")
        for c in history
    )

    # 5. Resolve with a summary, from the announcement's button and its modal.
    fake.clear_calls()
    slack.click("incident_resolve", channel_id=SEED_CHANNEL)
    fake.wait_for("views.open")
    empty = slack.submit_view(fake.last_view(), {"summary": ""})
    assert "errors" in empty.text  # a summary is required
    opened = len(fake.views_opened)
    slack.click("incident_resolve", channel_id=SEED_CHANNEL)
    wait_until(lambda: len(fake.views_opened) > opened, message="the second modal")
    slack.submit_view(fake.last_view(), {"summary": "Failed over to redis-2; OOM on redis-1"})
    data = settled(server, short_id)
    assert data["status"] == "RESOLVED" and data["resolved_at"]
    assert data["resolution_summary"] == "Failed over to redis-2; OOM on redis-1"
    assert data["acknowledged_at"] == acknowledged_at and data["mitigated_at"] is None
    resolved = timeline(data, "STATUS_CHANGE")[-1]
    assert (resolved["actor"], resolved["source"]) == ("alice", "slack:modal")
    assert resolved["message"].endswith(": Failed over to redis-2; OOM on redis-1")

    # The announcement was edited in place (one top-level message, updated), and every
    # change got a threaded reply; the war-room summary too.
    [announcement] = top_level(fake, SEED_CHANNEL)
    assert announcement["ts"] == ann_ts and announcement["edited"]
    rendered = str(announcement["blocks"])
    assert "RESOLVED" in rendered and "Failed over to redis-2" in rendered and "Reopen" in rendered
    assert replies(fake, SEED_CHANNEL, ann_ts) == [
        "👀 Acknowledged by alice",
        "🟠 Severity changed to *SEV2_HIGH* by alice",
        "✅ Resolved by alice\n>Failed over to redis-2; OOM on redis-1",
    ]
    summary = next(m for m in fake.messages(room) if m["ts"] == summary_ts)
    assert "RESOLVED" in str(summary["blocks"]) and summary["edited"]
    assert "RESOLVED" in fake.channel(room).topic

    # Notifications: the on-call's DMs for the declaration and the resolution only.
    dm = fake.dm_channel(ONCALL)
    assert dm is not None
    dms = [m["text"] for m in fake.messages(dm)]
    assert len(dms) == 2 and dms[1].startswith("✅ Resolved by alice")

    # The whole timeline, in order, with actors and origins.
    steps = [
        (e["type"], e["actor"], e["source"])
        for e in data["timeline"]
        if e["type"] in ("STATUS_CHANGE", "SEVERITY_CHANGE", "NOTE", "PINNED")
    ]
    assert steps == [
        ("STATUS_CHANGE", "alice", "slack:modal"),
        ("STATUS_CHANGE", "alice", "slack:button"),
        ("SEVERITY_CHANGE", "alice", "slack:modal"),
        ("NOTE", "alice", "slack:command"),
        ("PINNED", "oncall@example.com", "slack:reaction"),
        ("STATUS_CHANGE", "alice", "slack:modal"),
    ]
    with server.rt.transaction() as session:
        tasks = {t.kind: t.state for t in session.query(ScheduledTask)}
    assert tasks == {"escalation": "cancelled", "reminder": "cancelled", "archive": "scheduled"}


# -- the other buttons and subcommands -------------------------------------------------


def test_buttons_and_subcommands(running, tmp_path):
    server, slack, fake = running
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]

    # Mitigate by command in the war room: acknowledged_at is set with it.
    answer = slack.slash("mitigate", channel_id=room)
    assert f"{short_id} is now MITIGATED" in answer.text
    data = settled(server, short_id)
    assert data["mitigated_at"] and data["acknowledged_at"]
    assert "cannot acknowledge" in slack.slash(f"ack {short_id}").text

    # Join: Bob clicks on the announcement and is invited to the war room.
    assert BOB not in fake.channel(room).members
    slack.click("incident_join", channel_id=SEED_CHANNEL, user_id=BOB)
    wait_until(lambda: BOB in fake.channel(room).members, message="Bob in the war room")

    # Status, list (filters), doc, oncall, help, unknown.
    assert "*MITIGATED*" in slack.slash("status", channel_id=room).text
    assert short_id in slack.slash("list").text
    assert short_id in slack.slash("list mine").text
    assert short_id not in slack.slash("list mine", user_id=BOB).text
    assert short_id not in slack.slash("list sev3").text
    assert "no LID document" in slack.slash(f"doc {short_id}").text
    assert "SRE Core" in slack.slash("oncall").text
    assert "/incident page" in slack.slash("help").text
    assert "Which incident?" in slack.slash("ack").text  # not in a war room, no id

    # Resolve by command with a summary, reopen by button: reopening needs the manager
    # role (as over REST), so Bob (a responder by default) is refused and changes nothing;
    # Alice, made a manager in the configuration, reopens.
    assert "RESOLVED" in slack.slash("resolve All good now", channel_id=room).text
    data = settled(server, short_id)
    assert data["resolution_summary"] == "All good now"
    slack.click("incident_reopen", channel_id=SEED_CHANNEL, user_id=BOB)
    denial = wait_until(
        lambda: [e for e in fake.ephemerals if "needs the manager role" in str(e)],
        message="the reopen denial",
    )
    assert "responder" in str(denial[0])
    assert settled(server, short_id)["status"] == "RESOLVED"
    make_manager(server, "U0ALICE01", tmp_path)
    slack.click("incident_reopen", channel_id=SEED_CHANNEL)
    data = settled(server, short_id)
    assert data["status"] == "TRIGGERED" and data["resolved_at"] is None
    reopened = timeline(data, "STATUS_CHANGE")[-1]
    assert (reopened["actor"], reopened["source"]) == ("alice", "slack:button")
    assert "🔁 Reopened by alice" in replies(
        fake, SEED_CHANNEL, top_level(fake, SEED_CHANNEL)[0]["ts"]
    )
    with server.rt.transaction() as session:
        tasks = {t.kind: t.state for t in session.query(ScheduledTask)}
    assert tasks["archive"] == "cancelled" and tasks["reminder"] == "scheduled"


def test_roles_page_and_status_update(running):
    server, slack, fake = running
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]

    # A role: the holder gets a DM saying what the role is about.
    answer = slack.slash(f"role communications <@{BOB}|bob>", channel_id=room)
    assert f"<@{BOB}> is now communications" in answer.text
    data = settled(server, short_id)
    assert data["roles"] == {"communications": BOB}
    role_event = timeline(data, "ROLE_ASSIGNED")[-1]
    assert role_event["source"] == "slack:command"
    dm = fake.dm_channel(BOB)
    assert dm is not None
    [text] = [m["text"] for m in fake.messages(dm)]
    assert "*communications*" in text and "status updates" in text and short_id in text

    # Page a person: a DM, an ESCALATION and, once delivered, an ALERT_SENT.
    answer = slack.slash(f"page <@{BOB}|bob> please look at redis-2", channel_id=room)
    assert answer.text.startswith("📟 alice paged")
    data = settled(server, short_id)
    page_event = timeline(data, "ESCALATION")[-1]
    assert (page_event["actor"], page_event["source"]) == ("alice", "slack:command")
    assert any(m["text"].startswith("📟 Paged by alice") for m in fake.messages(dm))
    sent = [e for e in timeline(data, "ALERT_SENT") if "Slack (" in e["message"]]
    assert len(sent) >= 2

    # Page the team: its on-call, through the router (DM + channel thread reply).
    answer = slack.slash("page SRE Core redis is on fire", channel_id=room)
    assert "on call for SRE Core" in answer.text
    settled(server, short_id)
    oncall_dm = fake.dm_channel(ONCALL)
    assert any("📟 Paged by alice" in m["text"] for m in fake.messages(oncall_dm))
    assert "No team named" in slack.slash("page Nobody Team", channel_id=room).text

    # A status update: the modal, the war room, the team channel thread, the timeline.
    fake.clear_calls()
    slack.slash("update", channel_id=room)
    fake.wait_for("views.open")
    view = fake.last_view()
    assert view["callback_id"] == "status_update"
    answer = slack.submit_view(
        view, {"status_text": "Failover done", "impact": "Writes slow", "next_update": "20"}
    )
    assert "errors" not in answer.text
    data = settled(server, short_id)
    update = timeline(data, "STATUS_UPDATE")[-1]
    assert update["source"] == "slack:modal" and "Impact: Writes slow" in update["message"]
    assert any("*Status update* by alice" in m["text"] for m in fake.messages(room))
    ann_ts = top_level(fake, SEED_CHANNEL)[0]["ts"]
    assert any(
        r.startswith("📣 Status update by alice") for r in replies(fake, SEED_CHANNEL, ann_ts)
    )
    with server.rt.transaction() as session:
        reminder = session.query(ScheduledTask).filter_by(kind="reminder").one()
        delay = reminder.due_at - datetime.now(UTC)
    assert 18 * 60 < delay.total_seconds() <= 20 * 60  # "next update in 20 min"


def test_pin_reactions_are_filtered_and_removable(running):
    server, slack, fake = running
    declare(slack, fake)
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]
    ts = fake.post_as_user(room, BOB, "look at this graph")
    elsewhere = fake.post_as_user(SEED_CHANNEL, BOB, "not in a war room")

    def react(kind: str, channel: str, message_ts: str, emoji: str = "pushpin") -> None:
        event = {
            "type": kind,
            "user": ALICE,
            "reaction": emoji,
            "item_user": BOB,
            "item": {"type": "message", "channel": channel, "ts": message_ts},
        }
        assert slack.event(event).status_code == 200

    react("reaction_added", room, ts, emoji="eyes")
    react("reaction_added", SEED_CHANNEL, elsewhere)
    react("reaction_added", room, ts)
    wait_until(lambda: timeline(settled(server, short_id), "PINNED"), message="the pin")
    [pin] = timeline(settled(server, short_id), "PINNED")
    assert pin["message"] == "look at this graph" and pin["actor"] == "bob"

    react("reaction_removed", room, ts)
    wait_until(lambda: not timeline(incident_data(server, short_id), "PINNED"), message="unpin")
    react("reaction_added", room, ts)  # pinned again: recorded again
    wait_until(
        lambda: [
            e
            for e in timeline(settled(server, short_id), "PINNED")
            if e["message"] == "look at this graph"
        ],
        message="the second pin",
    )


# -- other ways in: App Home, the message shortcut ---------------------------------------


def test_app_home_and_message_shortcut(running):
    server, slack, fake = running
    declare(slack, fake, title="Public one")
    public = settled(server)
    declare(slack, fake, title="Secret one", private=["private"])
    secret = settled(server)
    assert secret["short_id"] != public["short_id"]

    slack.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE01", "tab": "home"})
    wait_until(lambda: ALICE in fake.home_views, message="Alice's home")
    home = str(fake.home_views[ALICE]["blocks"])
    assert public["short_id"] in home and secret["short_id"] in home
    assert home.index("Yours") < home.index(secret["short_id"])
    assert "home_declare" in home

    slack.event({"type": "app_home_opened", "user": BOB, "channel": "D0BOB0001", "tab": "home"})
    wait_until(lambda: BOB in fake.home_views, message="Bob's home")
    bob_home = str(fake.home_views[BOB]["blocks"])
    assert public["short_id"] in bob_home and secret["short_id"] not in bob_home

    # The Declare button on Home opens the modal.
    fake.clear_calls()
    slack.click("home_declare", view=fake.home_views[BOB], user_id=BOB)
    fake.wait_for("views.open")
    assert fake.last_view()["callback_id"] == "declare_incident"

    # The message shortcut pre-fills title, description and a link to the message.
    ts = fake.post_as_user(SEED_CHANNEL, BOB, "Checkout returns 502 for everyone\nsince 10:02")
    fake.clear_calls()
    slack.message_shortcut(
        "declare_from_message",
        message_text="Checkout returns 502 for everyone\nsince 10:02",
        message_ts=ts,
        channel_id=SEED_CHANNEL,
        user_id=BOB,
        message_user=BOB,
    )
    fake.wait_for("views.open")
    view = fake.last_view()
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert blocks["title"]["element"]["initial_value"] == "Checkout returns 502 for everyone"
    description = blocks["description"]["element"]["initial_value"]
    assert "since 10:02" in description and f"/archives/{SEED_CHANNEL}/p" in description
    slack.submit_view(view, {"service": "redis-prod", "severity": "SEV3_MEDIUM"}, user_id=BOB)
    data = wait_until(
        lambda: (d := incident_data(server)) and d["title"].startswith("Checkout") and d,
        message="the declared incident",
    )
    assert data["declared_by"] and data["timeline"][0]["source"] == "slack:shortcut"


# -- private incidents ------------------------------------------------------------------


def test_private_incident_stays_private(running):
    server, slack, fake = running
    declare(slack, fake, private=["private"])
    data = settled(server)
    short_id, room = data["short_id"], data["war_room_channel_id"]
    assert data["private"] is True
    channel = fake.channel(room)
    assert channel.is_private and ALICE in channel.members
    assert top_level(fake, SEED_CHANNEL) == []  # no announcement in public channels
    assert short_id in slack.slash("list").text
    assert short_id not in slack.slash("list", user_id=BOB).text
    # A role holder is involved: the incident shows in their list.
    slack.slash(f"role scribe <@{BOB}|bob> {short_id}")
    assert short_id in slack.slash("list", user_id=BOB).text
    slack.click("incident_ack", value=short_id, channel_id=room)
    assert settled(server, short_id)["status"] == "ACKNOWLEDGED"
    assert top_level(fake, SEED_CHANNEL) == []


# -- repair and doctor -------------------------------------------------------------------


def test_repair_reruns_dead_steps_and_doctor_answers(running):
    server, slack, fake = running
    fake.inject("conversations.create", error="restricted_action")
    declare(slack, fake)

    def dead_war_room() -> Any:
        with server.rt.transaction() as session:
            incident = session.query(Incident).one()
            rows = outbox_store.for_incident(session, incident_id=incident.id, kind="war_room")
            return rows and rows[0].state == "dead" and incident.short_id

    short_id = wait_until(dead_war_room, message="the war room to fail")
    answer = slack.slash(f"repair {short_id}")
    assert answer.status_code == 200
    assert f"🔧 *{short_id}*: 1 failed step(s) queued again." in answer.text
    assert "War room: pending" in answer.text and "reminder: scheduled" in answer.text
    data = settled(server, short_id)
    assert data["war_room_channel_id"]
    repair = timeline(data, "REPAIR")[-1]
    assert (repair["actor"], repair["source"]) == ("alice", "slack:command")
    # The failure and the later success are both in the timeline.
    assert any(
        "War room creation failed" in e["message"] for e in timeline(data, "NOTIFICATION_FAILED")
    )
    assert timeline(data, "WAR_ROOM_CREATED")
    again = slack.slash(f"repair {short_id}")
    assert "0 failed step(s)" in again.text and "War room: done" in again.text

    answer = slack.slash("doctor")
    assert answer.status_code == 200 and "Running the checks" in answer.text
    wait_until(
        lambda: any("slack token" in str(r["body"]) for r in fake.responses),
        message="the doctor's answer",
    )
    body = next(r["body"] for r in fake.responses if "slack token" in str(r["body"]))
    assert body["response_type"] == "ephemeral" and "✅ *database*" in body["text"]
