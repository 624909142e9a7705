"""Slack read latency under writers (issue 11): ``/incident list`` answered by a real
``imas serve`` on SQLite while N other processes declare incidents as fast as they can
(each declaration a write transaction on the same database file). Times each
``/incident list`` from request to Slack's HTTP 200; ``--writers 0`` for the baseline.

    .venv/bin/python bench/bench_read_latency.py [--writers 8] [--reads 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from imas_standins.slack_api import FakeSlack
from imas_standins.slack_driver import SlackDriver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import config_file  # noqa: E402
from bot.domain.actor import Actor
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from bot.settings import load_settings

TOKEN = "xoxb-bench"
SECRET = "bench-signing-secret"
CONFIG = """
teams:
  - {name: SRE Core, slack_channel_id: C0123456789}
services:
  - {name: redis-prod, owner_team: SRE Core, criticality: TIER_1_CRITICAL}
war_room: {severities: []}
"""


def writer(
    url: str, stop: multiprocessing.synchronize.Event, counter: multiprocessing.Value
) -> None:  # type: ignore[name-defined]
    rt = Runtime.build(
        load_settings(database_url=url, secret_key="bench", log_level="ERROR"), migrate=False
    )
    n = 0
    while not stop.is_set():
        declare(
            rt,
            data=DeclareInput(
                title=f"writer {os.getpid()} #{n}", service="redis-prod", severity="SEV4_LOW"
            ),
            actor=Actor("bench", "cli"),
        )
        n += 1
    with counter.get_lock():
        counter.value += n
    rt.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--reads", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeSlack(bot_token=TOKEN) as fake:
        fake.add_channel("sre-core", channel_id="C0123456789")
        url = f"sqlite:///{folder}/bench.db"
        rt = Runtime.build(load_settings(database_url=url, secret_key="bench"))
        with rt.transaction() as session:
            config_file.apply(session, rt, config_file.parse(CONFIG, {}, allow_private=True))
        rt.close()
        port = free_port()
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))
            },
            "IMAS_DATABASE_URL": url,
            "IMAS_SECRET_KEY": "bench",
            "IMAS_PORT": str(port),
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.url,
            "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
            "IMAS_SCHEDULER_ENABLED": "false",
            "IMAS_LOG_LEVEL": "ERROR",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop = multiprocessing.Event()
        counter = multiprocessing.Value("i", 0)
        writers = []
        try:
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.05)
            slack = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SECRET, fake)
            writers = [
                multiprocessing.Process(target=writer, args=(url, stop, counter))
                for _ in range(args.writers)
            ]
            for proc in writers:
                proc.start()
            time.sleep(1.0 if writers else 0)  # the writers are up to speed
            latencies = []
            began = time.perf_counter()
            for _ in range(args.reads):
                start = time.perf_counter()
                response = slack.slash("list all")
                latencies.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
            elapsed = time.perf_counter() - began
        finally:
            stop.set()
            for proc in writers:
                proc.join()
            server.terminate()
            server.wait()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(
        f"{args.writers} writer processes, {counter.value} declarations during the reads ({elapsed:.1f} s)"
    )
    print(
        f"/incident list ack: p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, "
        f"over 3 s: {sum(1 for x in latencies if x > 3.0)} / {len(latencies)}"
    )


if __name__ == "__main__":
    main()
