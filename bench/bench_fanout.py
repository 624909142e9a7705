"""Fan-out bench: one SEV1 delivered to 50 recipients across every provider type
(Slack channels and a DM, e-mail over SMTP+STARTTLS, Discord, Teams, ntfy, SMS,
PagerDuty, Opsgenie, generic JSON webhooks), timed from declaration until every delivery
is done. Local stand-ins answer immediately; the outbox runs with its real thread pool.

    .venv/bin/python bench/bench_fanout.py [--runs 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from imas_standins.slack_api import FakeSlack
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test stand-ins live in tests/

from bot import config_file  # noqa: E402
from bot.domain.actor import Actor
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.steps import make_worker
from storage.models import OutboxItem
from tests.fakes.receivers import HttpRecorder, Reply
from tests.fakes.smtp import SmtpInbox


def config(rec: HttpRecorder, smtp: SmtpInbox, fake: FakeSlack, channels: list[str]) -> str:
    scopes = "\n".join(
        f"  - {{name: scope-{i}, notify_emails: [scope{i}@example.com], slack_channel_id: {channels[i]}}}"
        for i in range(len(channels))
    )
    hooks = "\n".join(
        f'  - {{name: hook-{i}, type: WEBHOOK, config: {{format: json, url: "{rec.url(f"/hook/{i}")}"}}}}'
        for i in range(13)
    )
    return f"""
teams:
  - {{name: SRE Core, slack_channel_id: C0123456789, email: sre@example.com, current_on_call: U0ONCALL1}}
services:
  - {{name: redis-prod, owner_team: SRE Core, criticality: TIER_1_CRITICAL}}
impact_scopes:
{scopes}
war_room: {{severities: []}}
providers:
  - {{name: Slack, type: SLACK, config: {{bot_token: "{fake.bot_token}", endpoint: "{fake.url}"}}}}
  - {{name: Mail, type: EMAIL, config: {{host: 127.0.0.1, port: {smtp.port}, username: imas, password: smtp-secret,
      from_email: "imas@example.com", ca_file: "{smtp.ca_file}"}}}}
  - {{name: Discord, type: DISCORD, config: {{webhook_url: "{rec.url("/api/webhooks/1/t")}"}}}}
  - {{name: Teams, type: TEAMS, config: {{webhook_url: "{rec.url("/teams")}"}}}}
  - {{name: ntfy, type: NTFY, config: {{server: "{rec.base_url}/ntfy", topic: imas}}}}
  - {{name: SMS, type: SMS, config: {{application_key: a, application_secret: b, consumer_key: c,
      service_name: s, sender: IMAS, recipients: ["+33600000000"], endpoint: "{rec.base_url}/ovh"}}}}
  - {{name: PagerDuty, type: WEBHOOK, config: {{format: pagerduty, routing_key: rk, endpoint: "{rec.base_url}/pd"}}}}
  - {{name: Opsgenie, type: WEBHOOK, config: {{format: opsgenie, api_key: k, endpoint: "{rec.base_url}/og"}}}}
{hooks}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeSlack() as fake, HttpRecorder() as rec:
        smtp = SmtpInbox().start()
        rec.default("/pd/v2/enqueue", Reply(202, body={"status": "success"}))
        rec.default("/og/v2/alerts", Reply(202, body={"result": "ok"}))
        fake.add_channel("sre-core", channel_id="C0123456789")
        fake.add_user("U0ONCALL1", "oncall")
        channels = [fake.add_channel(f"scope-{i}") for i in range(14)]
        settings = load_settings(
            database_url=args.database_url or f"sqlite:///{folder}/bench.db",
            secret_key="bench",
            allow_private_webhook_targets=True,
            slack_api_url=fake.url,
            log_level="WARNING",
        )
        rt = Runtime.build(settings)
        document = config_file.parse(config(rec, smtp, fake, channels), {}, allow_private=True)
        with rt.transaction() as session:
            config_file.apply(session, rt, document)
        worker = make_worker(rt)
        worker.start()
        timings, counts = [], []
        try:
            for run in range(args.runs):
                start = time.perf_counter()
                incident, _ = declare(
                    rt,
                    data=DeclareInput(
                        title=f"fan-out {run}",
                        service="redis-prod",
                        severity="SEV1_CRITICAL",
                        scopes=[f"scope-{i}" for i in range(14)],
                    ),
                    actor=Actor("bench", "cli"),
                )
                while True:
                    with rt.transaction() as session:
                        rows = session.execute(
                            select(OutboxItem.state, func.count())
                            .where(
                                OutboxItem.incident_id == incident.id, OutboxItem.kind == "notify"
                            )
                            .group_by(OutboxItem.state)
                        ).all()
                    states = {str(r[0]): int(r[1]) for r in rows}
                    if states and set(states) <= {"done", "dead"}:
                        break
                    time.sleep(0.005)
                timings.append(time.perf_counter() - start)
                counts.append(sum(states.values()))
        finally:
            worker.stop()
            smtp.stop()
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"recipients per incident: {counts[0]} (all runs: {set(counts)})")
    print(
        f"declaration -> all delivered: p50 {statistics.median(timings) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms over {len(timings)} runs"
    )


if __name__ == "__main__":
    main()
