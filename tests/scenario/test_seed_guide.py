"""The seed guide, replayed through the running server as Slack would drive it:
config (team, service, provider) -> /incident -> modal -> submission -> war room,
announcement, timeline and log lines."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bot.presenter import incident_json
from handlers.cli import main
from storage import incidents as store
from tests.conftest import BOT_TOKEN
from tests.scenario.conftest import SEED_CHANNEL, SEED_CONFIG, wait_until


def apply_seed_config(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "imas.yml"
    path.write_text(SEED_CONFIG)
    env = {
        "IMAS_DATABASE_URL": database_url,
        "IMAS_SECRET_KEY": "test-secret-key",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    }
    result = CliRunner().invoke(main, ["config", "apply", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "created team SRE Core" in result.output
    again = CliRunner().invoke(main, ["config", "apply", str(path)], env=env)
    assert again.exit_code == 0 and "0 created, 0 updated" in again.output


def declare_through_modal(driver: Any, fake: Any, **values: Any) -> None:
    response = driver.slash("")
    assert response.status_code == 200
    fake.wait_for("views.open")
    view = fake.last_view()
    submitted = driver.submit_view(
        view,
        {
            "title": "[TEST] Redis Cluster Down",
            "description": "Test de notification - connexion timeout sur tous les nœuds",
            "service": "redis-prod",
            "severity": "SEV2_HIGH",
            **values,
        },
    )
    assert submitted.status_code == 200
    assert submitted.text in ("", "{}") or "errors" not in submitted.text, submitted.text


def test_seed_guide_end_to_end(tmp_path, database_url, start_server, driver, fake_slack, caplog):
    caplog.set_level(logging.INFO)
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    declare_through_modal(driver(server), fake_slack)

    rt = server.rt

    def finished() -> Any:
        with rt.transaction() as session:
            _n, rows = store.list_incidents(session)
            if not rows:
                return None
            data = incident_json(session, rt, rows[0], detail=True)
            states = {d["state"] for d in data["deliveries"]}
            return data if states <= {"done"} and data["war_room_channel_id"] else None

    data = wait_until(finished, message="orchestration to finish")
    short_id = data["short_id"]
    assert short_id.startswith("INC-") and len(short_id) == 10

    # 1. The Slack message in the team's channel (one, even though it is also the
    #    provider's default channel), edited in place to show the war room.
    announcements = [
        m
        for m in fake_slack.messages(SEED_CHANNEL)
        if m.get("user") == fake_slack.bot_user_id and not m.get("thread_ts")
    ]
    assert len(announcements) == 1
    blocks = announcements[0]["blocks"]
    assert blocks[0]["text"]["text"] == "🟠 [TEST] Redis Cluster Down - redis-prod"
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for expected in ("SEV2_HIGH", "TRIGGERED", "redis-prod", "SRE Core"):
        assert expected in fields
    rendered = str(blocks)
    assert "connexion timeout" in rendered and "Runbook" in rendered and "LID Document" in rendered
    assert f"<#{data['war_room_channel_id']}>" in rendered
    assert "View Incident" in rendered and "Acknowledge" in rendered

    # 2. The log lines.
    messages = [r.getMessage() for r in caplog.records]
    assert f"Created incident {short_id}: [TEST] Redis Cluster Down" in messages
    assert f"Sending notification to Slack channel {SEED_CHANNEL}" in messages
    assert "Slack notification sent successfully" in messages

    # 3. The timeline.
    types = [(e["type"], e["message"]) for e in data["timeline"]]
    assert ("ALERT_SENT", "Notification sent to Slack (SRE Core)") in types
    assert any(t == "WAR_ROOM_CREATED" for t, _ in types)

    # The war room: name, topic, people, pinned summary, bookmarks.
    room = fake_slack.channel(data["war_room_channel_id"])
    assert room.name == f"{short_id.lower()}-test-redis-cluster-down"  # inc-a1b2c3-...
    assert "SEV2_HIGH" in room.topic and "redis-prod" in room.topic
    assert {"U0ALICE01", "U0ONCALL1"} <= room.members
    assert len(room.pins) == 1
    assert {b["title"] for b in room.bookmarks} >= {"Incident", "Runbook"}
    # The on-call person got one DM for the declaration.
    assert fake_slack.dm_channel("U0ONCALL1") is not None
