"""Alert webhooks against a running server (real HTTP, outbox workers, fake Slack), with
the alert rules coming from the configuration file (``imas config apply``).

An Alertmanager pointed at IMAS opens one incident per alert group (which gets its war
room and announcement like any other), does not duplicate it on repeats, even when the
repeats arrive concurrently, and resolves it when the alerts resolve.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner
from imas_standins.slack_api import HANG_GUARD_SECONDS
from sqlalchemy import func, select

from bot.presenter import incident_json
from handlers.cli import main
from storage import incidents as store
from storage.models import Alert, Incident
from tests.api_helpers import ALERTS, SENTRY_SECRET, WEBHOOK_TOKEN, load_alert
from tests.conftest import BOT_TOKEN
from tests.scenario.conftest import SEED_CHANNEL, SEED_CONFIG, wait_until

RULES = """
alert_rules:
  - name: redis
    match: {labels: {service: redis-prod}}
    auto_create: true
    auto_resolve: true
  - name: sentry
    source: sentry
    service: redis-prod
    auto_create: true
    auto_resolve: true
  - name: everything-else
    severity_mapping: {severity: {critical: SEV2_HIGH}}
"""
HEADERS = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}


def apply_config(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "imas.yml"
    path.write_text(SEED_CONFIG + RULES)
    env = {
        "IMAS_DATABASE_URL": database_url,
        "IMAS_SECRET_KEY": "test-secret-key",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    }
    result = CliRunner().invoke(main, ["config", "apply", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "created alert rule redis" in result.output


def start(tmp_path: Path, database_url: str, start_server: Any) -> tuple[Any, str]:
    apply_config(tmp_path, database_url)
    server = start_server(webhook_token=WEBHOOK_TOKEN, sentry_client_secret=SENTRY_SECRET)
    return server, f"http://127.0.0.1:{server.port}/api/v1/webhooks"


def post(url: str, payload: Any, headers: dict[str, str] | None = None) -> requests.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return requests.post(url, data=body, headers=headers or HEADERS, timeout=HANG_GUARD_SECONDS)


def count(rt: Any, model: Any) -> int:
    with rt.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def settled(rt: Any, short_id: str, status: str) -> dict[str, Any] | None:
    with rt.transaction() as session:
        incident = store.get_incident(session, ref=short_id)
        assert incident is not None
        data = incident_json(session, rt, incident, detail=True)
    states = {d["state"] for d in data["deliveries"]}
    return (
        data
        if data["status"] == status and states <= {"done"} and data["war_room_channel_id"]
        else None
    )


def test_alertmanager_group_opens_orchestrates_and_resolves(
    tmp_path, database_url, start_server, fake_slack
):
    server, base = start(tmp_path, database_url, start_server)
    firing = (ALERTS / "alertmanager_firing.json").read_bytes()
    first = post(f"{base}/alertmanager/", firing)
    assert first.status_code == 202, first.text
    [short_id] = first.json()["created_incidents"]

    data = wait_until(lambda: settled(server.rt, short_id, "TRIGGERED"), message="war room")
    assert data["severity"] == "SEV1_CRITICAL" and data["source"] == "webhook"
    assert [e["type"] for e in data["timeline"]].count("ALERT_RECEIVED") == 2
    announcements = [
        m
        for m in fake_slack.messages(SEED_CHANNEL)
        if m.get("user") == fake_slack.bot_user_id and not m.get("thread_ts")
    ]
    assert len(announcements) == 1 and "Redis instance is down" in str(announcements[0]["blocks"])

    slack_calls = len(fake_slack.calls)
    again = post(f"{base}/alertmanager/", firing).json()
    assert again["created_incidents"] == [] and again["deduplicated"] == 2
    assert count(server.rt, Incident) == 1

    resolved = post(f"{base}/alertmanager/", (ALERTS / "alertmanager_resolved.json").read_bytes())
    assert resolved.json()["resolved_incidents"] == [short_id]
    data = wait_until(lambda: settled(server.rt, short_id, "RESOLVED"), message="resolution")
    assert data["resolution_summary"] == "All alerts resolved"
    assert len(fake_slack.calls) > slack_calls  # the resolution was announced


def test_concurrent_duplicate_deliveries_open_one_incident(
    tmp_path, database_url, start_server, fake_slack
):
    server, base = start(tmp_path, database_url, start_server)
    firing = load_alert("alertmanager_firing.json")
    one, two = copy.deepcopy(firing), copy.deepcopy(firing)
    one["alerts"], two["alerts"] = firing["alerts"][:1], firing["alerts"][1:]
    payloads = [firing] * 6 + [one, two] * 3
    responses: list[requests.Response] = []
    barrier = threading.Barrier(len(payloads))

    def deliver(payload: Any) -> None:
        barrier.wait()
        responses.append(post(f"{base}/alertmanager/", payload))

    threads = [threading.Thread(target=deliver, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in responses) == [202] * len(payloads)
    assert sum(len(r.json()["created_incidents"]) for r in responses) == 1
    assert count(server.rt, Incident) == 1
    assert count(server.rt, Alert) == 2
    with server.rt.transaction() as session:
        assert sum(session.scalars(select(Alert.count))) == 6 * 2 + 6


def test_every_tool_over_http(tmp_path, database_url, start_server, fake_slack):
    server, base = start(tmp_path, database_url, start_server)
    # Grafana legacy and Datadog tag their alert service:redis-prod (rule "redis" creates);
    # the others are only stored (rule "everything-else" does not auto-create).
    for name, source, created in [
        ("grafana_unified.json", "grafana", 0),
        ("grafana_legacy.json", "grafana", 1),
        ("datadog.json", "datadog", 1),
        ("custom.json", "custom", 0),
    ]:
        response = post(f"{base}/{source}/", (ALERTS / name).read_bytes())
        assert response.status_code == 202, (name, response.text)
        assert response.json()["stored"] >= 1
        assert len(response.json()["created_incidents"]) == created, (name, response.json())

    body = (ALERTS / "sentry_metric_alert.json").read_bytes()
    signature = hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest()
    sentry = {
        "Content-Type": "application/json",
        "Sentry-Hook-Resource": "metric_alert",
        "Sentry-Hook-Signature": signature,
    }
    response = post(f"{base}/sentry/", body, sentry)
    assert response.status_code == 202, response.text
    assert len(response.json()["created_incidents"]) == 1

    before = (count(server.rt, Incident), count(server.rt, Alert))
    assert (
        post(f"{base}/sentry/", body, {**sentry, "Sentry-Hook-Signature": "0" * 64}).status_code
        == 401
    )
    assert post(f"{base}/alertmanager/", b"{", HEADERS).status_code == 400
    assert (
        post(f"{base}/alertmanager/", body, {"Content-Type": "application/json"}).status_code == 401
    )
    big = b'{"alerts": [], "pad": "' + b"x" * 1_100_000 + b'"}'
    assert post(f"{base}/alertmanager/", big).status_code == 413
    assert (count(server.rt, Incident), count(server.rt, Alert)) == before
