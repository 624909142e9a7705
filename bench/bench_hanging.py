"""Hanging-provider bench (issue 11): SEV1 declarations in a burst, each announced in the
team channel, given a war room, and sent to a webhook whose receiver reads the request
and never answers (until the HTTP read timeout). Times, per incident, from its commit to
its Slack announcement done and to its war room done; ``--no-hang`` answers at once, for
comparison. The outbox runs with its real worker pool and bulkhead.

    .venv/bin/python bench/bench_hanging.py [--incidents 20] [--no-hang] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from imas_standins.slack_api import FakeSlack
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test stand-ins live in tests/

from bot import config_file  # noqa: E402
from bot.domain.actor import Actor
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.steps import make_worker
from storage.models import OutboxItem
from tests.fakes.receivers import HttpRecorder, Reply

TOKEN = "xoxb-bench"


def config(rec: HttpRecorder, fake: FakeSlack) -> str:
    return f"""
teams:
  - {{name: SRE Core, slack_channel_id: C0123456789, current_on_call: U0ONCALL1}}
services:
  - {{name: redis-prod, owner_team: SRE Core, criticality: TIER_1_CRITICAL}}
providers:
  - {{name: Slack, type: SLACK, config: {{bot_token: "{TOKEN}", endpoint: "{fake.url}"}}}}
  - {{name: stuck, type: WEBHOOK, config: {{format: json, url: "{rec.url("/stuck")}"}}}}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=20)
    parser.add_argument("--no-hang", action="store_true")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        FakeSlack(bot_token=TOKEN) as fake,
        HttpRecorder() as rec,
    ):
        rec.default("/stuck", Reply(200) if args.no_hang else Reply(hang=600))
        fake.add_channel("sre-core", channel_id="C0123456789")
        fake.add_user("U0ONCALL1", "oncall")
        settings = load_settings(
            database_url=args.database_url or f"sqlite:///{folder}/bench.db",
            secret_key="bench",
            allow_private_webhook_targets=True,
            slack_api_url=fake.url,
            slack_bot_token=TOKEN,
            slack_signing_secret="bench-signing-secret",
            log_level="ERROR",
        )
        rt = Runtime.build(settings)
        document = config_file.parse(config(rec, fake), {}, allow_private=True)
        with rt.transaction() as session:
            config_file.apply(session, rt, document)
        worker = make_worker(rt)
        worker.start()
        committed: dict[int, float] = {}
        announced: dict[int, float] = {}
        rooms: dict[int, float] = {}
        try:
            for n in range(args.incidents):
                incident, _ = declare(
                    rt,
                    data=DeclareInput(
                        title=f"hanging {n}", service="redis-prod", severity="SEV1_CRITICAL"
                    ),
                    actor=Actor("bench", "cli"),
                )
                committed[incident.id] = time.perf_counter()
            while len(announced) < len(committed) or len(rooms) < len(committed):
                with rt.transaction() as session:
                    rows = session.execute(
                        select(
                            OutboxItem.incident_id, OutboxItem.kind, OutboxItem.provider_name
                        ).where(OutboxItem.state == "done")
                    ).all()
                now = time.perf_counter()
                for incident_id, kind, provider in rows:
                    if kind == "notify" and provider == "Slack":
                        announced.setdefault(incident_id, now)
                    if kind == "war_room":
                        rooms.setdefault(incident_id, now)
                time.sleep(0.005)
            in_use = worker.in_use()
            stuck = len(rec.requests_for("/stuck"))
        finally:
            rec.stop()  # release the hanging requests
            worker.stop()
    a = [announced[i] - committed[i] for i in committed]
    w = [rooms[i] - committed[i] for i in committed]
    label = "answering" if args.no_hang else "hanging"
    print(
        f"{args.incidents} SEV1 in a burst, webhook {label}, {settings.outbox_workers} workers, "
        f"provider budget {settings.provider_budget}"
    )
    print(f"announcement: p50 {statistics.median(a) * 1000:.0f} ms, p99 {pct(a, 0.99):.0f} ms")
    print(f"war room:     p50 {statistics.median(w) * 1000:.0f} ms, p99 {pct(w, 0.99):.0f} ms")
    print(f"webhook requests received meanwhile: {stuck}; workers in use at the end: {in_use}")


if __name__ == "__main__":
    main()
