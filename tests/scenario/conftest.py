"""A running IMAS server (real HTTP, real Bolt) wired to the fake Slack Web API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.server import Server
from bot.standins.slack_api import FakeSlack
from bot.standins.slack_driver import SlackDriver
from tests.conftest import BOT_TOKEN, SECRET

SEED_CHANNEL = "C0123456789"

SEED_CONFIG = """
teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    email: sre@example.com
    current_on_call: oncall@example.com
    members: [alice@example.com]
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


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN)
    fake.start()
    fake.add_channel("sre-core", channel_id=SEED_CHANNEL, members=("U0ALICE01",))
    fake.add_user("U0ONCALL1", "oncall", email="oncall@example.com", real_name="On Call")
    yield fake
    fake.stop()


@pytest.fixture
def start_server(make_settings: Any, fake_slack: FakeSlack) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(**overrides: Any) -> Server:
        values = {"slack_bot_token": BOT_TOKEN, "slack_signing_secret": SECRET,
                  "slack_api_url": fake_slack.url}
        values.update(overrides)
        server = Server(make_settings(**values))
        server.start_in_thread()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def driver(fake_slack: FakeSlack) -> Callable[[Server], SlackDriver]:
    def make(server: Server) -> SlackDriver:
        return SlackDriver(f"http://127.0.0.1:{server.port}/slack/events", SECRET, fake_slack)

    return make


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")
