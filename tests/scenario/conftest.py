"""Scenario helpers; the server fixtures live in tests/conftest.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.conftest import BOT_TOKEN, SECRET, SEED_CHANNEL  # noqa: F401 - re-exported for tests

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


def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, message: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")
