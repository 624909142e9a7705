"""Issue 11 acceptance: ``imas serve`` SIGKILLed at injected points of a SEV1 declaration
(``bot/faults.py``), then restarted: every incident complete, exactly one announcement,
one war room, one pinned summary, one DM to the on-call person, and the webhook's
duplicates (at-least-once) carry the same idempotency key. Some runs post 65 unrelated
messages to the team channel between the crash and the restart."""

from __future__ import annotations

import os
import random

import pytest
import requests
from click.testing import CliRunner
from imas_standins.slack_driver import SlackDriver
from sqlalchemy import create_engine, func, select

from handlers.cli import main
from storage.models import Incident, OutboxItem
from tests.conftest import BOT_TOKEN, SECRET, SEED_CHANNEL
from tests.fakes.receivers import HttpRecorder
from tests.reliability.test_crash_recovery import free_port, start_serve, wait_healthy
from tests.scenario.conftest import SEED_CONFIG, wait_until

POINTS = [
    ("declare.committed", 0),
    ("war_room.created", 65),
    ("outbox.performed@war_room", 0),
    ("outbox.performed@notify/Slack Production/channel", 65),
    ("outbox.performed@notify/Slack Production/user", 0),
    ("outbox.performed@notify/hook", 0),
]
# IMAS_CRASH_RUNS=N adds N runs at random points (seeded by IMAS_CRASH_SEED) for soak runs.
EXTRA = int(os.environ.get("IMAS_CRASH_RUNS", "0"))
_rng = random.Random(int(os.environ.get("IMAS_CRASH_SEED", "11")))
CASES = POINTS + [(_rng.choice(POINTS)[0], _rng.choice((0, 65))) for _ in range(EXTRA)]


@pytest.mark.parametrize(("point", "noise"), CASES)
def test_crash_at_point_then_restart(tmp_path, database_url, fake_slack, point, noise):
    hooks = HttpRecorder().start()
    config = tmp_path / "imas.yml"
    config.write_text(
        SEED_CONFIG
        + f"""  - name: hook
    type: WEBHOOK
    config: {{format: json, url: "{hooks.url("/hook")}"}}
"""
    )
    applied = CliRunner().invoke(
        main,
        ["config", "apply", str(config)],
        env={
            "IMAS_DATABASE_URL": database_url,
            "IMAS_SECRET_KEY": "test-secret-key",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        },
    )
    assert applied.exit_code == 0, applied.output
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))},
        "IMAS_DATABASE_URL": database_url,
        "IMAS_SECRET_KEY": "test-secret-key",
        "IMAS_PORT": str(port),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.url,
        "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "IMAS_OUTBOX_POLL_SECONDS": "0.2",
        "IMAS_WORKER_HEARTBEAT_SECONDS": "0.5",
        "IMAS_WORKER_DEAD_SECONDS": "2",
        "IMAS_SCHEDULER_ENABLED": "false",
    }
    log = tmp_path / "serve.log"
    proc = start_serve({**env, "IMAS_TEST_CRASH_AT": point}, log)
    try:
        wait_healthy(port, proc, log)
        slack = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SECRET, fake_slack)
        slack.slash("")
        fake_slack.wait_for("views.open")
        values = {"title": "[TEST] Crash", "service": "redis-prod", "severity": "SEV1_CRITICAL"}
        try:
            slack.submit_view(fake_slack.last_view(), values)
        except requests.RequestException:
            assert point == "declare.committed"  # killed before it could answer
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -9, f"the crash point {point} was not reached"
    fake_slack.add_user("U0NOISE001", "noise")
    for n in range(noise):
        fake_slack.post_as_user(SEED_CHANNEL, "U0NOISE001", f"unrelated {n}")
    restarted = start_serve(env, log)
    engine = create_engine(database_url)
    try:
        wait_healthy(port, restarted, log)

        def complete() -> bool:
            with engine.connect() as conn:
                open_rows = conn.execute(
                    select(func.count())
                    .select_from(OutboxItem)
                    .where(OutboxItem.state.in_(("pending", "in_flight", "failed")))
                ).scalar()
                room = conn.execute(select(Incident.war_room_channel_id)).scalar()
                return bool(room) and open_rows == 0

        wait_until(complete, message="the incident completed after restart")
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Incident)).scalar() == 1
            dead = conn.execute(
                select(OutboxItem.kind, OutboxItem.last_error).where(OutboxItem.state == "dead")
            ).all()
            assert dead == []
    finally:
        restarted.terminate()
        restarted.wait(15)
        engine.dispose()
        hooks.stop()
    bot = fake_slack.bot_user_id
    rooms = [c for c in fake_slack.channels.values() if c.name.startswith("inc-")]
    assert len(rooms) == 1, [c.name for c in rooms]
    announcements = [
        m
        for m in fake_slack.messages(SEED_CHANNEL)
        if m.get("user") == bot and not m.get("thread_ts")
    ]
    assert len(announcements) == 1
    summaries = [m for m in fake_slack.messages(rooms[0].id) if m.get("user") == bot]
    assert len(summaries) == 1 and len(rooms[0].pins) == 1
    dm = fake_slack.dm_channel("U0ONCALL1")
    assert dm is not None
    assert len([m for m in fake_slack.messages(dm) if m.get("user") == bot]) == 1
    deliveries = hooks.requests_for("/hook")
    assert deliveries and len({r.header("Idempotency-Key") for r in deliveries}) == 1
