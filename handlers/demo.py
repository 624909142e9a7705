"""``imas demo``: the seed guide played end to end on a throw-away SQLite database against
the Slack stand-in, printing what a person would see. No account needed.

The stand-in is equipment, not product: it lives in the separate ``imas-standins``
distribution (``standins/`` in the repository), so it is imported here only when the demo
runs, and its absence is a one-line error naming the command that installs it."""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot import config_file
from bot.presenter import incident_json
from bot.settings import load_settings
from handlers.server import Server
from handlers.terminal import boxed, echo, mrkdwn_to_text
from storage import incidents as incident_store

if TYPE_CHECKING:
    from imas_standins import FakeSlack

STANDINS_MISSING = (
    "`imas demo` needs the Slack stand-ins, which are not installed: "
    "run `pip install -e ./standins` from the IMAS repository"
)
SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - the stand-in's own secret
TEAM_CHANNEL = "C0123456789"
DEMO_CONFIG = """
teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    email: sre@example.com
    current_on_call: oncall@example.com
services:
  - name: redis-prod
    owner_team: SRE Core
    criticality: TIER_1_CRITICAL
    runbook_url: https://wiki.example.com/runbooks/redis
providers:
  - name: Slack Production
    type: SLACK
    is_active: true
    config: {bot_token: "${SLACK_BOT_TOKEN}", default_channel: C0123456789}
"""


class StandinsMissing(Exception):
    """The ``imas-standins`` distribution is not installed."""


def standins_installed() -> bool:
    return importlib.util.find_spec("imas_standins") is not None


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("bot."):
            self.lines.append(f"{record.levelname} - {record.getMessage()}")


def render_blocks(
    blocks: list[dict[str, Any]], channel_name: Callable[[str], str | None] | None = None
) -> list[str]:
    """Blocks as the plain lines a reader sees in Slack (mrkdwn rendered for a terminal:
    ``Runbook (https://…)``, ``#channel``)."""

    def text(value: str) -> str:
        return mrkdwn_to_text(value, channel_name=channel_name)

    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(text(block["text"]["text"]))
        elif kind == "section":
            if block.get("text"):
                lines.extend(text(block["text"]["text"]).splitlines())
            for field in block.get("fields", []):
                lines.append(text(field["text"]).replace("\n", " "))
        elif kind == "context":
            lines.append(text(" ".join(e.get("text", "") for e in block.get("elements", []))))
        elif kind == "actions":
            lines.append(" ".join(f"[{e['text']['text']}]" for e in block.get("elements", [])))
        lines.append("")
    return lines


def heading(text: str) -> str:
    return click.style(text, bold=True)


def run_demo(*, keep_running: bool = False) -> int:
    if not standins_installed():
        raise StandinsMissing(STANDINS_MISSING)
    from imas_standins import FakeSlack

    collector = _Collector()
    logging.getLogger().addHandler(collector)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="imas-demo-") as folder, FakeSlack() as fake:
        fake.add_channel("sre-core", channel_id=TEAM_CHANNEL, members=("U0ALICE01",))
        fake.add_user("U0ONCALL1", "oncall", email="oncall@example.com", real_name="On Call")
        settings = load_settings(
            database_url=f"sqlite:///{Path(folder) / 'demo.db'}",
            port=0,
            slack_bot_token=fake.bot_token,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.url,
            # the stand-in Slack listens on 127.0.0.1, which the address guard refuses
            allow_private_webhook_targets=True,
            scheduler_enabled=False,
            outbox_poll_seconds=0.2,
        )
        server = Server(settings)
        echo(
            heading(
                "Step 1-3: team SRE Core, service redis-prod, provider 'Slack Production' "
                "(imas config apply)"
            )
        )
        document = config_file.parse(
            DEMO_CONFIG, {"SLACK_BOT_TOKEN": fake.bot_token}, name="demo.yml", allow_private=True
        )
        with server.rt.transaction() as session:
            echo(
                "  "
                + config_file.apply(session, server.rt, document, source="demo.yml")
                .summary()
                .replace("\n", "\n  ")
            )
        server.start_in_thread()
        try:
            return _play(server, fake, collector, keep_running)
        finally:
            server.stop()
            logging.getLogger().removeHandler(collector)


def _play(server: Server, fake: FakeSlack, collector: _Collector, keep_running: bool) -> int:
    from imas_standins import SlackDriver

    slack = SlackDriver(f"http://127.0.0.1:{server.port}/slack/events", SIGNING_SECRET, fake)
    echo(heading("\nStep 4: Alice types /incident in #general ..."))
    started = time.monotonic()
    response = slack.slash("")
    echo(
        f"  Slack got its answer in {(time.monotonic() - started) * 1000:.0f} ms "
        f"(HTTP {response.status_code}); the declare modal opens"
    )
    fake.wait_for("views.open")
    view = fake.last_view()
    values = {
        "title": "[TEST] Redis Cluster Down",
        "description": "Test de notification - connexion timeout sur tous les nœuds",
        "service": "redis-prod",
        "severity": "SEV2_HIGH",
    }
    echo(f"  ... and submits it: {json.dumps(values, ensure_ascii=False)}")
    slack.submit_view(view, values)

    deadline = time.monotonic() + 15
    data: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        with server.rt.transaction() as session:
            _n, rows = incident_store.list_incidents(session)
            if rows:
                data = incident_json(session, server.rt, rows[0], detail=True)
                if data["war_room_channel_id"] and all(
                    d["state"] == "done" for d in data["deliveries"]
                ):
                    break
        time.sleep(0.1)
    if data is None:
        echo("error: the incident was not created", err=True)
        return 1
    elapsed = time.monotonic() - started
    announcement = next(m for m in fake.messages(TEAM_CHANNEL) if not m.get("thread_ts"))
    echo(heading("\nVérification 1 - the message in #sre-core:"))

    def channel_name(channel_id: str) -> str | None:
        channel = fake.channels.get(channel_id)
        return channel.name if channel else None

    echo(boxed("#sre-core", render_blocks(announcement["blocks"], channel_name)))
    room = fake.channel(data["war_room_channel_id"])
    members = ", ".join(sorted(fake.users[m].name for m in room.members if m in fake.users))
    echo(
        f"\nWar room: #{room.name}\n  topic: {room.topic}\n  members: {members}\n"
        f"  bookmarks: {', '.join(b['title'] for b in room.bookmarks)}\n  pinned summary: "
        f"{'yes' if room.pins else 'no'}"
    )
    echo(heading("\nVérification 2 - the log lines:"))
    for line in collector.lines:
        echo(f"  {line}")
    echo(heading("\nVérification 3 - the timeline:"))
    for event in data["timeline"]:
        message = mrkdwn_to_text(event["message"], channel_name=channel_name)
        echo(f"  {event['at'][11:19]}  {event['type']:<18} {message}", indent=" " * 30)
    echo(f"\nIncident {data['short_id']} fully set up in {elapsed:.2f} s. ")
    if keep_running:
        echo(f"Serving on http://127.0.0.1:{server.port} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0
