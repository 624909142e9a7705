"""Screenshots of the web dashboard (home, list, detail, create, analytics) at 1280 px
and 375 px wide, taken by Debian's headless Chromium (Playwright with
``executable_path``; nothing is downloaded) against an in-process ``imas serve`` with
the Slack stand-in and a throw-away SQLite database seeded with a month of incidents.

    .venv/bin/python bench/screenshots.py [--out bench/screenshots] [--readme docs/dashboard.png]

PNGs go to ``--out`` (git-ignored). ``--readme`` also writes the small 1280 px shot of an
incident page that the README shows.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from imas_standins.slack_api import FakeSlack

from bot.domain.actor import Actor
from bot.domain.enums import AccessRole
from bot.flows import incidents
from bot.flows.declare import DeclareInput, declare
from bot.settings import load_settings
from handlers.server import Server
from storage import auth
from storage.db import make_engine, upgrade
from storage.models import Incident

BOT_TOKEN = "xoxb-screenshots"
PASSWORD = "screenshots-password"
CONFIG = f"""
teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    email: sre@example.com
    current_on_call: oncall@example.com
    members: [alice@example.com]
  - name: Payments
    slack_channel_id: C0PAYMENTS1
services:
  - name: redis-prod
    owner_team: SRE Core
    criticality: TIER_1_CRITICAL
    runbook_url: https://wiki.example.com/runbooks/redis
  - name: postgres-main
    owner_team: SRE Core
  - name: checkout-api
    owner_team: Payments
providers:
  - name: Slack Production
    type: SLACK
    is_active: true
    config: {{bot_token: "{BOT_TOKEN}", default_channel: C0123456789}}
"""
TITLES = {
    "redis-prod": ["Redis latency above 200 ms", "Redis replica lag", "Redis evictions spike"],
    "postgres-main": ["Postgres connections exhausted", "Slow queries on orders"],
    "checkout-api": ["Checkout 5xx above 2 %", "Payment provider timeouts"],
}


def seed(server: Server) -> str:
    rt = server.rt
    actor = Actor(label="alice", source="python", role=AccessRole.ADMIN, email="alice@example.com")
    chance = random.Random(7)
    now = rt.clock()
    for n in range(28):
        service = chance.choice(sorted(TITLES))
        incident, _ = declare(
            rt,
            data=DeclareInput(
                title=chance.choice(TITLES[service]),
                service=service,
                severity=chance.choice(["SEV2_HIGH", "SEV3_MEDIUM", "SEV3_MEDIUM", "SEV4_LOW"]),
            ),
            actor=actor,
        )
        with rt.transaction() as session:
            row = session.get(Incident, incident.id)
            assert row is not None
            created = now - timedelta(days=1 + n * 1.05, hours=chance.randint(0, 23))
            row.created_at = created
            row.acknowledged_at = created + timedelta(minutes=chance.randint(2, 25))
            row.resolved_at = created + timedelta(minutes=chance.randint(30, 300))
            row.status = "RESOLVED"
    incident, _ = declare(
        rt,
        data=DeclareInput(
            title="[TEST] Redis Cluster Down",
            description="Test de notification - connexion timeout sur tous les nœuds",
            service="redis-prod",
            severity="SEV2_HIGH",
        ),
        actor=actor,
    )
    short_id = incident.short_id
    for _ in range(600):  # the outbox posts the announcement and opens the war room
        data = incidents.show(rt, actor=actor, ref=short_id)
        if data["war_room_url"]:
            break
        time.sleep(0.05)
    incidents.set_status(rt, actor=actor, ref=short_id, status="ACKNOWLEDGED")
    incidents.add_note(rt, actor=actor, ref=short_id, text="Failover to the replica started")
    with rt.transaction() as session:
        auth.create_user(session, username="alice", password=PASSWORD, role="admin")
    return short_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/screenshots")
    parser.add_argument("--readme", default=None, help="also write the README's screenshot here")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium binary: apt-get install chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="imas-shots-"))
    fake = FakeSlack(bot_token=BOT_TOKEN)
    fake.start()
    fake.add_channel("sre-core", channel_id="C0123456789", members=("U0ALICE01",))
    fake.add_channel("payments", channel_id="C0PAYMENTS1", members=("U0ALICE01",))
    fake.add_user("U0ALICE01", "alice", email="alice@example.com", real_name="Alice Martin")
    fake.add_user("U0ONCALL1", "oncall", email="oncall@example.com", real_name="On Call")
    (work / "imas.yml").write_text(CONFIG)
    database_url = f"sqlite:///{work / 'imas.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    server = Server(
        load_settings(
            database_url=database_url,
            secret_key="screenshots-secret",
            port=0,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret="screenshots-signing-secret",
            slack_api_url=fake.url,
            scheduler_enabled=False,
            allow_private_webhook_targets=True,  # the Slack stand-in is on 127.0.0.1
            config_file=work / "imas.yml",
        )
    )
    server.start_in_thread()
    try:
        short_id = seed(server)
        base = f"http://127.0.0.1:{server.port}"
        pages = {
            "home": "/dashboard/",
            "list": "/dashboard/incidents/",
            "detail": f"/dashboard/incidents/{short_id}/",
            "create": "/dashboard/incidents/create/",
            "analytics": "/dashboard/analytics/?days=30",
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            for width in (1280, 375):
                context = browser.new_context(viewport={"width": width, "height": 800})
                context.route(
                    "**/*",
                    lambda route: (
                        route.continue_() if route.request.url.startswith(base) else route.abort()
                    ),
                )
                page = context.new_page()
                page.goto(base + "/dashboard/login/")
                page.fill("#username", "alice")
                page.fill("#password", PASSWORD)
                page.click("button:has-text('Sign in')")
                page.wait_for_url(base + "/dashboard/")
                for name, path in pages.items():
                    page.goto(base + path)
                    target = out / f"{name}-{width}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(target)
                if args.readme and width == 1280:
                    page.goto(base + pages["detail"])
                    page.screenshot(path=args.readme, full_page=False)
                    print(args.readme)
                context.close()
            browser.close()
    finally:
        server.stop()
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
