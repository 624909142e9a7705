"""R14: ``imas serve`` is SIGKILLed right after the incident commit (its outbox calls still
in flight at Slack); after a restart the war room and the announcement exist exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import requests
from imas_standins.slack_api import HANG_GUARD_SECONDS
from imas_standins.slack_driver import SlackDriver
from sqlalchemy import create_engine, func, select, text

from storage.models import Incident, OutboxItem
from tests.conftest import BOT_TOKEN, SECRET, SEED_CHANNEL
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"imas serve exited: {log.read_text()[-2000:]}")
        try:
            if (
                requests.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=HANG_GUARD_SECONDS
                ).status_code
                == 200
            ):
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("imas serve did not start")


def test_sigkill_after_commit_then_restart(tmp_path, database_url, fake_slack):
    apply_seed_config(tmp_path, database_url)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))},
        "IMAS_DATABASE_URL": database_url,
        "IMAS_SECRET_KEY": "test-secret-key",
        "IMAS_PORT": str(port),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.url,
        "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",  # the stand-in Slack is on 127.0.0.1
        "IMAS_OUTBOX_LEASE_SECONDS": "2",
        "IMAS_OUTBOX_POLL_SECONDS": "0.2",
        "IMAS_SCHEDULER_ENABLED": "false",
    }
    log = tmp_path / "serve.log"
    proc = start_serve(env, log)
    try:
        wait_healthy(port, proc, log)
        slack = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SECRET, fake_slack)
        slack.slash("")
        fake_slack.wait_for("views.open")
        view = fake_slack.last_view()
        fake_slack.set_latency(1.5)  # the outbox's Slack calls are in flight when we kill
        slack.submit_view(
            view,
            {
                "title": "[TEST] Redis Cluster Down",
                "service": "redis-prod",
                "severity": "SEV1_CRITICAL",
            },
        )
        engine = create_engine(database_url)

        def committed() -> bool:
            with engine.connect() as conn:
                return bool(conn.execute(select(func.count()).select_from(Incident)).scalar())

        wait_until(committed, message="incident commit")
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with engine.connect() as conn:
        in_flight = conn.execute(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.state == "in_flight")
        ).scalar()
    assert in_flight, "the kill should interrupt orchestration steps in flight"
    # Calls the dead process had sent still complete at Slack (as a real lost response).
    time.sleep(2.0)
    assert fake_slack.count("conversations.create") == 1
    fake_slack.set_latency(0)
    restarted = start_serve(env, log)
    try:
        wait_healthy(port, restarted, log)

        def complete() -> bool:
            with engine.connect() as conn:
                open_rows = conn.execute(
                    select(func.count()).select_from(OutboxItem).where(OutboxItem.state != "done")
                ).scalar()
                room = conn.execute(select(Incident.war_room_channel_id)).scalar()
                return bool(room) and open_rows == 0

        wait_until(complete, message="orchestration completed after restart")
    finally:
        restarted.terminate()
        restarted.wait(15)
    rooms = [c for c in fake_slack.channels.values() if c.name.startswith("inc-")]
    assert len(rooms) == 1, [c.name for c in rooms]
    announcements = [
        m
        for m in fake_slack.messages(SEED_CHANNEL)
        if m.get("user") == fake_slack.bot_user_id and not m.get("thread_ts")
    ]
    assert len(announcements) == 1
    summaries = [
        m for m in fake_slack.messages(rooms[0].id) if m.get("user") == fake_slack.bot_user_id
    ]
    assert len(summaries) == 1 and len(rooms[0].pins) == 1
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from incidents")).scalar() == 1
    engine.dispose()


def test_sigkill_rows_reclaimed_by_dead_worker_detection_not_lease(
    tmp_path, database_url, fake_slack
):
    """Issue 11: with the default 120 s lease, the rows a killed process held are claimed
    again because its heartbeat stopped (before their lease expires), and 65 messages
    posted to the team channel meanwhile do not hide the announcement from the retry."""
    apply_seed_config(tmp_path, database_url)
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
    proc = start_serve(env, log)
    engine = create_engine(database_url)
    try:
        wait_healthy(port, proc, log)
        slack = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SECRET, fake_slack)
        slack.slash("")
        fake_slack.wait_for("views.open")
        view = fake_slack.last_view()
        fake_slack.set_latency(1.5)  # the outbox's Slack calls are in flight when we kill
        slack.submit_view(
            view,
            {"title": "[TEST] Kafka lag", "service": "redis-prod", "severity": "SEV1_CRITICAL"},
        )

        def claimed() -> bool:
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        select(func.count())
                        .select_from(OutboxItem)
                        .where(OutboxItem.state == "in_flight", OutboxItem.claimed_by.is_not(None))
                    ).scalar()
                )

        wait_until(claimed, message="outbox rows claimed by the first process")
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with engine.connect() as conn:
        held = {
            row.id: (row.claimed_by, row.lease_until)
            for row in conn.execute(
                select(OutboxItem.id, OutboxItem.claimed_by, OutboxItem.lease_until).where(
                    OutboxItem.state == "in_flight"
                )
            )
        }
    assert held, "the kill should interrupt steps in flight"
    time.sleep(2.0)  # calls the dead process had sent complete at Slack (lost responses)
    fake_slack.set_latency(0)
    fake_slack.add_user("U0NOISE001", "noise")
    for n in range(65):  # a busy team channel between the crash and the retry
        fake_slack.post_as_user(SEED_CHANNEL, "U0NOISE001", f"unrelated message {n}")
    restarted = start_serve(env, log)
    try:
        wait_healthy(port, restarted, log)

        def complete() -> bool:
            with engine.connect() as conn:
                open_rows = conn.execute(
                    select(func.count()).select_from(OutboxItem).where(OutboxItem.state != "done")
                ).scalar()
                return open_rows == 0

        wait_until(complete, message="orchestration completed after restart")
    finally:
        restarted.terminate()
        restarted.wait(15)
    with engine.connect() as conn:
        rows = {
            row.id: row
            for row in conn.execute(
                select(OutboxItem.id, OutboxItem.claimed_by, OutboxItem.done_at).where(
                    OutboxItem.id.in_(list(held))
                )
            )
        }
    engine.dispose()
    for row_id, (dead_worker, lease_until) in held.items():
        row = rows[row_id]
        assert row.claimed_by != dead_worker  # claimed again by the new process...
        done_at = row.done_at if row.done_at.tzinfo else row.done_at.replace(tzinfo=UTC)
        until = lease_until if lease_until.tzinfo else lease_until.replace(tzinfo=UTC)
        assert done_at < until  # ...and finished before the dead claim's lease expired
    rooms = [c for c in fake_slack.channels.values() if c.name.startswith("inc-")]
    assert len(rooms) == 1, [c.name for c in rooms]
    announcements = [
        m
        for m in fake_slack.messages(SEED_CHANNEL)
        if m.get("user") == fake_slack.bot_user_id and not m.get("thread_ts")
    ]
    assert len(announcements) == 1
    summaries = [
        m for m in fake_slack.messages(rooms[0].id) if m.get("user") == fake_slack.bot_user_id
    ]
    assert len(summaries) == 1 and len(rooms[0].pins) == 1
