"""Slack latency bench: slash-command ack, views.open, and submission -> announcement /
war room, p50 and p99, at 1 and 50 concurrent declarations, with the Slack stand-in
answering in 0 s and in 1 s.

Runs ``imas serve`` as a separate process (so the load generator does not share its
interpreter) on a throw-away SQLite database, against the built-in Slack stand-in.

    .venv/bin/python bench/bench_slack.py [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import requests
from imas_standins.slack_api import FakeSlack
from imas_standins.slack_driver import SlackDriver
from slack_sdk.signature import SignatureVerifier

SECRET = "bench-signing-secret"
SLACK_ANSWER_LIMIT_S = 3.0
CHANNEL = "C0123456789"
CONFIG = """
teams:
  - {name: SRE Core, slack_channel_id: C0123456789, current_on_call: oncall@example.com}
services:
  - {name: redis-prod, owner_team: SRE Core, criticality: TIER_1_CRITICAL,
     runbook_url: "https://wiki.example.com/runbooks/redis"}
providers:
  - name: Slack Production
    type: SLACK
    config: {bot_token: "${SLACK_BOT_TOKEN}", default_channel: C0123456789}
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_scenario(
    latency: float, concurrency: int, rounds: int, web_processes: int = 1
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder, FakeSlack() as fake:
        fake.add_channel("sre-core", channel_id=CHANNEL, members=("U0ALICE01",))
        fake.add_user("U0ONCALL1", "oncall", email="oncall@example.com")
        users = [f"U0BENCH{i:03d}" for i in range(concurrency)]
        for user in users:
            fake.add_user(user, user.lower())
        port = free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))
        }
        env.update(
            {
                "IMAS_DATABASE_URL": f"sqlite:///{folder}/bench.db",
                "IMAS_SECRET_KEY": "bench",
                "IMAS_PORT": str(port),
                "SLACK_BOT_TOKEN": fake.bot_token,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": fake.url,
                "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",  # the stand-in is on 127.0.0.1
                "IMAS_LOG_LEVEL": "WARNING",
                "IMAS_SCHEDULER_ENABLED": "false",
                "IMAS_WEB_PROCESSES": str(web_processes),
            }
        )
        config = Path(folder) / "imas.yml"
        config.write_text(CONFIG)
        subprocess.run(
            [sys.executable, "-m", "handlers.cli", "config", "apply", str(config)],
            env=env,
            check=True,
            capture_output=True,
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            fake.set_latency(latency)
            slack = SlackDriver(
                f"http://127.0.0.1:{port}/slack/events", SECRET, fake, max_seconds=30
            )
            acks: list[float] = []
            submit_acks: list[float] = []
            opens: list[float] = []
            announce: list[float] = []
            rooms: list[float] = []
            for round_no in range(rounds):
                # Start the load process first so its start-up is not counted against the
                # 3-second trigger ids, which Slack issues when the person types the command.
                firer = subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("fire.py"))],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                time.sleep(1.0)
                triggers = [fake.new_trigger_id() for _ in users]
                sent: dict[str, float] = {}
                signed = []
                for i, user in enumerate(users):
                    body = urlencode(
                        {
                            "command": "/incident",
                            "text": "",
                            "team_id": fake.team_id,
                            "user_id": user,
                            "user_name": user.lower(),
                            "channel_id": "C0GENERAL1",
                            "trigger_id": triggers[i],
                            "response_url": fake.response_url(),
                            "api_app_id": fake.app_id,
                        }
                    )
                    ts = str(int(time.time()))
                    signature = SignatureVerifier(SECRET).generate_signature(
                        timestamp=ts, body=body
                    )
                    signed.append(
                        {
                            "body": body,
                            "headers": {
                                "Content-Type": "application/x-www-form-urlencoded",
                                "X-Slack-Request-Timestamp": ts,
                                "X-Slack-Signature": signature,
                            },
                        }
                    )
                out, _ = firer.communicate(
                    json.dumps({"url": f"http://127.0.0.1:{port}/slack/events", "requests": signed})
                )
                answers = json.loads(out)
                acks += [elapsed for elapsed, _sent_at in answers]
                for trigger, (_elapsed, sent_at) in zip(triggers, answers, strict=True):
                    sent[trigger] = sent_at
                deadline = time.time() + 60
                expected = (round_no + 1) * concurrency
                while time.time() < deadline and len(fake.views_opened) < expected:
                    time.sleep(0.02)
                calls = {
                    c.args.get("trigger_id"): c for c in fake.calls if c.method == "views.open"
                }
                for trigger in triggers:
                    if trigger in calls:
                        # the fake records a call when it arrives, before its latency
                        opens.append(max(0.0, calls[trigger].at - sent[trigger]))
                views = list(fake.views_opened[-concurrency:])
                if len(fake.views_opened) < expected:
                    errors = (
                        [c.response for c in fake.calls if c.method == "views.open"][-3:]
                        if hasattr(fake.calls[0], "response")
                        else []
                    )
                    raise SystemExit(
                        f"only {len(fake.views_opened)} of {expected} modals opened {errors}"
                    )
                titles = [f"bench {round_no}-{i} outage" for i in range(concurrency)]
                submitted: dict[str, float] = {}

                def submit(
                    i: int, views: list = views, titles: list = titles, submitted: dict = submitted
                ) -> None:
                    submitted[titles[i]] = time.time()
                    started = time.perf_counter()
                    slack.submit_view(
                        views[i],
                        {"title": titles[i], "service": "redis-prod", "severity": "SEV1_CRITICAL"},
                        user_id=users[i],
                    )
                    submit_acks.append(time.perf_counter() - started)

                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    list(pool.map(submit, range(concurrency)))
                deadline = time.time() + 120
                seen_announce: dict[str, float] = {}
                seen_room: dict[str, float] = {}
                while time.time() < deadline and (
                    len(seen_announce) < concurrency or len(seen_room) < concurrency
                ):
                    for call in fake.calls:
                        if (
                            call.method == "chat.postMessage"
                            and call.args.get("channel") == CHANNEL
                        ):
                            for title in titles:
                                if title not in seen_announce and title in json.dumps(
                                    call.args.get("blocks", "")
                                ):
                                    seen_announce[title] = call.at + latency
                        if call.method == "pins.add":
                            channel = fake.channels.get(str(call.args.get("channel")))
                            for title in titles:
                                slug = title.replace(" ", "-")
                                if (
                                    title not in seen_room
                                    and channel
                                    and channel.name.endswith(slug)
                                ):
                                    seen_room[title] = call.at + latency
                    time.sleep(0.05)
                time.sleep(2.0)  # let refreshes finish: each burst starts on an idle server
                announce += [seen_announce[t] - submitted[t] for t in seen_announce]
                rooms += [seen_room[t] - submitted[t] for t in seen_room]
        finally:
            server.terminate()
            server.wait(15)
    ms = 1000.0
    return {
        "slack_latency_s": latency,
        "concurrency": concurrency,
        "rounds": rounds,
        "ack_p50_ms": pct(acks, 50) * ms,
        "ack_p99_ms": pct(acks, 99) * ms,
        "ack_max_ms": max(acks) * ms,
        "views_open_p50_ms": pct(opens, 50) * ms,
        "views_open_p99_ms": pct(opens, 99) * ms,
        "announcement_p50_ms": pct(announce, 50) * ms,
        "announcement_p99_ms": pct(announce, 99) * ms,
        "war_room_p50_ms": pct(rooms, 50) * ms,
        "war_room_p99_ms": pct(rooms, 99) * ms,
        "incidents": len(announce),
        "submit_ack_p50_ms": pct(submit_acks, 50) * ms,
        "submit_ack_p99_ms": pct(submit_acks, 99) * ms,
        # Slack shows the user operation_timeout past 3 s: the limit the tests no longer
        # assert (a loaded CI machine must not turn them red) is counted here instead.
        "over_slack_3s": sum(1 for t in acks + submit_acks if t > SLACK_ANSWER_LIMIT_S),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", help="latency:concurrency, e.g. 0:50")
    parser.add_argument("--web-processes", type=int, default=1)
    args = parser.parse_args()
    results = []
    for latency in (0.0, 1.0):
        for concurrency in (1, 50):
            if args.only and args.only != f"{latency:g}:{concurrency}":
                continue
            result = run_scenario(latency, concurrency, args.rounds, args.web_processes)
            results.append(result)
            print(
                json.dumps(
                    {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}
                )
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(
        "\n| Slack latency | concurrent | ack p50 | ack p99 | modal submission ack p50/p99 "
        "| views.open p50/p99 | announcement p50/p99 | war room p50/p99 | answers > 3 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['slack_latency_s']:.0f} s | {r['concurrency']} | {r['ack_p50_ms']:.0f} ms | "
            f"{r['ack_p99_ms']:.0f} ms | {r['submit_ack_p50_ms']:.0f} / {r['submit_ack_p99_ms']:.0f} ms | "
            f"{r['views_open_p50_ms']:.0f} / {r['views_open_p99_ms']:.0f} ms | "
            f"{r['announcement_p50_ms']:.0f} / {r['announcement_p99_ms']:.0f} ms | "
            f"{r['war_room_p50_ms']:.0f} / {r['war_room_p99_ms']:.0f} ms | "
            f"{r['over_slack_3s']} |"
        )


if __name__ == "__main__":
    main()
