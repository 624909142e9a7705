"""Dashboard page render time with 10,000 incidents in the database.

Seeds a throw-away database (SQLite by default, or ``--database-url`` for PostgreSQL:
a fresh database is created and dropped) with ``--incidents`` incidents spread over a
year (five timeline events each, ~3% private), starts ``imas serve`` in-process, signs
in as an admin with a real session cookie, and times sequential GETs of each page
(``--rounds`` each, after one warm-up). Prints p50/p95 per page in milliseconds.

    .venv/bin/python bench/bench_dashboard.py [--incidents 10000] [--rounds 40]
    .venv/bin/python bench/bench_dashboard.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bot.settings import load_settings
from handlers.server import Server
from storage import auth
from storage.db import make_engine, upgrade
from storage.models import Incident, Service, Team, TimelineEvent

PASSWORD = "bench-password-123"


def seed(url: str, count: int) -> str:
    engine = make_engine(url)
    upgrade(engine)
    chance = random.Random(12)
    now = datetime.now(UTC)
    from sqlalchemy.orm import Session

    with Session(engine) as session, session.begin():
        teams = [Team(name=f"Team {i}", slack_channel_id=f"C0TEAM{i:04d}") for i in range(8)]
        session.add_all(teams)
        session.flush()
        services = [
            Service(name=f"service-{i}", owner_team_id=teams[i % len(teams)].id) for i in range(40)
        ]
        session.add_all(services)
        session.flush()
        auth.create_user(session, username="bench", password=PASSWORD, role="admin")
        detail_id = ""
        for n in range(count):
            service = chance.choice(services)
            created = now - timedelta(minutes=chance.randint(0, 365 * 24 * 60))
            resolved = n % 20 != 0
            incident = Incident(
                short_id=f"INC-{n:06X}",
                title=f"Incident {n} on {service.name}",
                description="Latency above threshold on several nodes",
                service_id=service.id,
                team_id=service.owner_team_id,
                severity=chance.choice(["SEV1_CRITICAL", "SEV2_HIGH", "SEV3_MEDIUM", "SEV4_LOW"]),
                status="RESOLVED" if resolved else "TRIGGERED",
                private=n % 33 == 0,
                source="api",
                created_at=created,
                acknowledged_at=created + timedelta(minutes=chance.randint(1, 30)),
                resolved_at=created + timedelta(minutes=chance.randint(31, 600))
                if resolved
                else None,
            )
            session.add(incident)
            if n % 500 == 0:
                session.flush()
            detail_id = incident.short_id
        session.flush()
        ids = [row[0] for row in session.execute(text("SELECT id FROM incidents"))]
        session.add_all(
            TimelineEvent(
                incident_id=incident_id,
                type=kind,
                message=f"{kind} event",
                actor="bench",
                source="api",
                at=now,
            )
            for incident_id in ids
            for kind in ("STATUS_CHANGE", "ALERT_SENT", "NOTE", "ALERT_SENT", "STATUS_CHANGE")
        )
    engine.dispose()
    return detail_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--incidents", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imas-bench-dash-"))
    admin_url, url = None, f"sqlite:///{work / 'imas.db'}"
    if args.database_url:
        name = f"imas_bench_{uuid.uuid4().hex[:8]}"
        admin_url = args.database_url
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        started = time.perf_counter()
        detail = seed(url, args.incidents)
        print(f"seeded {args.incidents} incidents in {time.perf_counter() - started:.1f} s")
        server = Server(
            load_settings(
                database_url=url,
                secret_key="bench-secret",
                port=0,
                scheduler_enabled=False,
            )
        )
        server.start_in_thread()
        try:
            base = f"http://127.0.0.1:{server.port}"
            web = requests.Session()
            form = web.get(base + "/dashboard/login/", timeout=30)
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token
            signed = web.post(
                base + "/dashboard/login/",
                data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)},
                timeout=30,
            )
            assert signed.status_code == 200 and "bench" in signed.text, signed.status_code
            pages = {
                "home": "/dashboard/",
                "list": "/dashboard/incidents/",
                "list page 100": "/dashboard/incidents/?page=100",
                "list filtered": "/dashboard/incidents/?status=RESOLVED&severity=SEV2_HIGH&team=Team%203",
                "search": "/dashboard/incidents/?q=service-7",
                "detail": f"/dashboard/incidents/{detail}/",
                "analytics 90 d": "/dashboard/analytics/?days=90",
                "live (list poll)": "/dashboard/live/",
            }
            print(
                f"| page | p50 ms | p95 ms | ({'SQLite' if admin_url is None else 'PostgreSQL'}, {args.incidents} incidents, {args.rounds} GETs) |"
            )
            print("|---|---|---|---|")
            for name, path in pages.items():
                assert web.get(base + path, timeout=60).status_code == 200, path
                samples = []
                for _ in range(args.rounds):
                    began = time.perf_counter()
                    response = web.get(base + path, timeout=60)
                    samples.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200
                samples.sort()
                p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
                print(f"| {name} | {statistics.median(samples):.0f} | {p95:.0f} | |")
        finally:
            server.stop()
    finally:
        if admin_url is not None:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(
                    text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
                )
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
