"""``imas serve`` start-up rules and the operational endpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests
from click.testing import CliRunner
from imas_standins.slack_api import HANG_GUARD_SECONDS

from bot.domain.actor import Actor
from bot.flows.declare import DeclareInput, declare
from handlers.cli import main
from storage import auth as auth_store
from tests.reliability.test_crash_recovery import free_port
from tests.scenario.test_seed_guide import apply_seed_config


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))}
    env.update(extra)
    return env


def test_half_slack_configuration_refuses_to_start(tmp_path):
    result = CliRunner().invoke(
        main,
        ["serve"],
        env={"SLACK_BOT_TOKEN": "xoxb-1", "IMAS_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
    )
    assert result.exit_code == 2
    assert "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not" in result.output


def test_invalid_setting_is_named(tmp_path):
    result = CliRunner().invoke(main, ["serve"], env={"IMAS_PORT": "not-a-port"})
    assert result.exit_code == 2 and "IMAS_PORT" in result.output


def test_serve_without_slack_starts_and_says_so(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve"],
        cwd=tmp_path,
        env=clean_env(IMAS_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while time.monotonic() < deadline:
            try:
                if (
                    requests.get(
                        f"http://127.0.0.1:{port}/readyz", timeout=HANG_GUARD_SECONDS
                    ).status_code
                    == 200
                ):
                    break
            except requests.RequestException:
                time.sleep(0.1)
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=HANG_GUARD_SECONDS).json()
        assert health["slack"] is False
        slack = requests.post(
            f"http://127.0.0.1:{port}/slack/events", data="x", timeout=HANG_GUARD_SECONDS
        )
        assert slack.status_code == 404 and "SLACK_SIGNING_SECRET" in slack.text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=HANG_GUARD_SECONDS)[0]
    assert "Slack is disabled: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET" in output
    assert (tmp_path / "imas.db").exists()  # the embedded default, migrated at start


def test_health_metrics_and_incident_page(start_server, tmp_path, database_url):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    base = f"http://127.0.0.1:{server.port}"
    public, _ = declare(
        server.rt,
        data=DeclareInput(title="<b>Redis</b> down", service="redis-prod", severity="SEV3_MEDIUM"),
        actor=Actor("alice", "cli"),
    )
    secret, _ = declare(
        server.rt,
        data=DeclareInput(
            title="Data leak", service="redis-prod", severity="SEV1_CRITICAL", private=True
        ),
        actor=Actor("alice", "cli"),
    )
    assert requests.get(f"{base}/readyz", timeout=HANG_GUARD_SECONDS).status_code == 200
    metrics = requests.get(f"{base}/metrics", timeout=HANG_GUARD_SECONDS).text
    assert 'imas_incidents{severity="SEV3_MEDIUM",status="TRIGGERED"} 1.0' in metrics
    assert "imas_outbox_items" in metrics
    assert "imas_http_request_duration_seconds_bucket" in metrics and 'route="/readyz"' in metrics
    # the page answers only to an API token (until dashboard sessions), and what the
    # token may see: a viewer not involved gets 404 for a private incident
    anonymous = requests.get(f"{base}/incidents/{public.short_id}", timeout=HANG_GUARD_SECONDS)
    assert anonymous.status_code == 401 and "Redis" not in anonymous.text
    with server.rt.transaction() as session:
        token = auth_store.create_token(session, name="reader", role="viewer")[1]
    viewer = {"Authorization": f"Token {token}"}
    page = requests.get(
        f"{base}/incidents/{public.short_id}", headers=viewer, timeout=HANG_GUARD_SECONDS
    )
    assert page.status_code == 200 and "&lt;b&gt;Redis&lt;/b&gt; down" in page.text
    assert (
        requests.get(
            f"{base}/incidents/{secret.short_id}", headers=viewer, timeout=HANG_GUARD_SECONDS
        ).status_code
        == 404
    )
