"""Alert ingestion throughput: Alertmanager v4 payloads of 50 alerts POSTed to
``/api/v1/webhooks/alertmanager/`` of a running ``imas serve`` by 8 concurrent senders.

* distinct: every payload carries 50 new alerts (new fingerprints);
* duplicate: the same 50 alerts re-sent (Alertmanager's repeat_interval / HA peers),
  folded into the stored alerts.

No alert rule auto-creates incidents here: this measures intake (auth, parsing, dedup,
storage). Prints alerts/s per scenario.

    .venv/bin/python bench/bench_alerts.py [--database-url URL] [--payloads 40]
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

import requests
from sqlalchemy import create_engine, text

TOKEN = "bench-webhook-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def payload(batch: int, size: int = 50) -> dict[str, object]:
    alerts = []
    for i in range(size):
        labels = {
            "alertname": "HighLatency",
            "service": "redis-prod",
            "severity": "warning",
            "instance": f"node-{batch}-{i}:9100",
        }
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"latency high on node-{batch}-{i}"},
                "startsAt": "2026-11-27T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com/graph",
                "fingerprint": f"{batch:06x}{i:06x}",
            }
        )
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="HighLatency",batch="{batch}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "imas",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com",
        "alerts": alerts,
    }


def blast(url: str, bodies: list[bytes], senders: int = 8) -> float:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(body: bytes) -> None:
        response = session.post(url, data=body, headers=headers, timeout=60)
        if response.status_code >= 300:
            raise SystemExit(f"HTTP {response.status_code}: {response.text[:200]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=senders) as pool:
        list(pool.map(post, bodies))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--payloads", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        if url.startswith("postgresql"):
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            name = f"imas_bench_{os.getpid()}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = url.rsplit("/", 1)[0] + "/" + name
        port = free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))
        }
        env.update(
            {
                "IMAS_DATABASE_URL": url,
                "IMAS_SECRET_KEY": "bench",
                "IMAS_PORT": str(port),
                "IMAS_WEBHOOK_TOKEN": TOKEN,
                "IMAS_LOG_LEVEL": "WARNING",
                "IMAS_SCHEDULER_ENABLED": "false",
            }
        )
        server = subprocess.Popen([sys.executable, "-m", "handlers.cli", "serve"], env=env)
        try:
            for _ in range(100):
                try:
                    requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            hook = f"http://127.0.0.1:{port}/api/v1/webhooks/alertmanager/"
            blast(hook, [json.dumps(payload(10_000 + i)).encode() for i in range(4)])  # warm-up
            distinct = [json.dumps(payload(i)).encode() for i in range(args.payloads)]
            seconds = blast(hook, distinct)
            n = args.payloads * 50
            print(f"distinct : {n} alerts in {seconds:.2f} s = {n / seconds:.0f} alerts/s")
            seconds = blast(hook, distinct)
            print(f"duplicate: {n} alerts in {seconds:.2f} s = {n / seconds:.0f} alerts/s")
            stored = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            print(
                "\n".join(
                    line
                    for line in stored.splitlines()
                    if line.startswith("imas_alerts_received_total")
                )
            )
        finally:
            server.terminate()
            server.wait(15)
            if url.startswith("postgresql"):
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
