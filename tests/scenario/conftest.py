"""Scenario helpers; the server fixtures live in tests/conftest.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from imas_standins.slack_api import HANG_GUARD_SECONDS

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


def wait_until(predicate: Callable[[], Any], message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    The only limit is the shared hang guard: a test waits for an outcome, however long a
    loaded machine takes, and fails only when the other side is plainly dead."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")
