"""Recovery bench (issue 11): ``imas serve`` is SIGKILLed while its outbox holds rows (a
SEV1's war room and announcements in flight at a slow Slack stand-in), then restarted at
once with the default 120 s lease. Times, from the kill, until every row the dead process
held was claimed again by the new one and until all of them are done. The goal is under
10 s (``IMAS_WORKER_DEAD_SECONDS`` = 10 by default: a row is reclaimed once the dead
process's heartbeat is that old).

    .venv/bin/python bench/bench_recovery.py [--runs 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from imas_standins.slack_api import FakeSlack
from sqlalchemy import create_engine, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import config_file  # noqa: E402
from bot.domain.actor import Actor
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from bot.settings import load_settings
from storage.models import OutboxItem

TOKEN = "xoxb-bench"
CONFIG = """
teams:
  - {name: SRE Core, slack_channel_id: C0123456789, current_on_call: U0ONCALL1}
services:
  - {name: redis-prod, owner_team: SRE Core, criticality: TIER_1_CRITICAL}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = env["IMAS_PORT"]
    while True:
        if proc.poll() is not None:
            raise SystemExit("imas serve exited")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.05)


def one_run(database_url: str, fake: FakeSlack, run: int) -> tuple[float, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))},
        "IMAS_DATABASE_URL": database_url,
        "IMAS_SECRET_KEY": "bench",
        "IMAS_PORT": str(free_port()),
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
        "SLACK_API_URL": fake.url,
        "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "IMAS_SCHEDULER_ENABLED": "false",
        "IMAS_LOG_LEVEL": "ERROR",
    }
    settings = load_settings(
        database_url=database_url,
        secret_key="bench",
        slack_api_url=fake.url,
        slack_bot_token=TOKEN,
        allow_private_webhook_targets=True,
    )
    rt = Runtime.build(settings)
    engine = create_engine(database_url)
    fake.set_latency(2.0)  # the calls are in flight when the process dies
    first = serve(env)
    incident, _ = declare(
        rt,
        data=DeclareInput(title=f"recovery {run}", service="redis-prod", severity="SEV1_CRITICAL"),
        actor=Actor("bench", "cli"),
    )
    rt.wake_outbox()
    while True:
        with engine.connect() as conn:
            held = dict(
                conn.execute(
                    select(OutboxItem.id, OutboxItem.claimed_by).where(
                        OutboxItem.incident_id == incident.id,
                        OutboxItem.state == "in_flight",
                        OutboxItem.claimed_by.is_not(None),
                    )
                ).all()
            )
        if held:
            break
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    killed = time.perf_counter()
    first.wait()
    fake.set_latency(0)
    second = serve(env)
    reclaimed_at = None
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(OutboxItem.id, OutboxItem.claimed_by, OutboxItem.state).where(
                        OutboxItem.id.in_(list(held))
                    )
                ).all()
            if reclaimed_at is None and all(
                r.claimed_by != held[r.id] or r.state == "done" for r in rows
            ):
                reclaimed_at = time.perf_counter()
            if all(r.state == "done" for r in rows):
                done_at = time.perf_counter()
                break
            time.sleep(0.02)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait()
        engine.dispose()
        rt.close()
    assert reclaimed_at is not None
    return reclaimed_at - killed, done_at - killed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeSlack(bot_token=TOKEN) as fake:
        fake.add_channel("sre-core", channel_id="C0123456789")
        fake.add_user("U0ONCALL1", "oncall")
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        rt = Runtime.build(load_settings(database_url=url, secret_key="bench"))
        with rt.transaction() as session:
            config_file.apply(session, rt, config_file.parse(CONFIG, {}, allow_private=True))
        if url.startswith("postgresql"):
            with rt.engine.begin() as conn:
                conn.execute(text("DELETE FROM workers"))
        rt.close()
        results = [one_run(url, fake, run) for run in range(args.runs)]
    reclaim = [r[0] for r in results]
    done = [r[1] for r in results]
    print(f"{args.runs} runs, default lease 120 s, worker dead after 10 s")
    print(
        f"kill -> held rows reclaimed: median {statistics.median(reclaim):.1f} s, "
        f"max {max(reclaim):.1f} s"
    )
    print(
        f"kill -> held rows done:      median {statistics.median(done):.1f} s, max {max(done):.1f} s"
    )


if __name__ == "__main__":
    main()
