"""Issue 6 acceptance with a real Prometheus Alertmanager (Debian's package) pointed at
the running server: one incident per alert group, no duplicate on repeats, resolved when
the alerts resolve."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from imas_standins.slack_api import HANG_GUARD_SECONDS
from sqlalchemy import func, select

from storage.models import Alert, Incident
from tests.reliability.test_crash_recovery import free_port
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN = "am-webhook-token-0123456789"
RULES = """
alert_rules:
  - name: redis from Alertmanager
    source: alertmanager
    match: {alertname: "Redis.*", labels: {service: redis-prod}}
    auto_create: true
    auto_resolve: true
"""


@pytest.fixture
def alertmanager(tmp_path: Any, start_server: Any, database_url: str) -> Any:
    if BINARY is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus-alertmanager is not installed (.ci/run installs it)")
        pytest.skip(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    apply_seed_config(tmp_path, database_url)
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    server = start_server(webhook_token=TOKEN, config_file=rules)
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: imas
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: imas
    webhook_configs:
      - url: http://127.0.0.1:{server.port}/api/v1/webhooks/alertmanager/
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {TOKEN}}}
""")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"{base}/-/ready", timeout=HANG_GUARD_SECONDS).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, message="Alertmanager ready")
    yield server, base
    proc.terminate()
    proc.wait(10)


def post_alerts(base: str, instances: list[str], *, resolved: bool = False) -> None:
    now = datetime.now(UTC).isoformat()
    alerts = []
    for instance in instances:
        alert: dict[str, Any] = {
            "labels": {
                "alertname": "RedisDown",
                "service": "redis-prod",
                "severity": "critical",
                "instance": instance,
            },
            "annotations": {"summary": f"Redis {instance} is down"},
            "startsAt": "2026-11-27T10:00:00Z",
        }
        if resolved:
            alert["endsAt"] = now
        alerts.append(alert)
    response = requests.post(f"{base}/api/v2/alerts", json=alerts, timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 200, response.text


def test_real_alertmanager_opens_dedups_and_resolves(alertmanager):
    server, base = alertmanager
    rt = server.rt

    def counts() -> tuple[int, int, list[str]]:
        with rt.reading() as session:
            incidents = session.scalar(select(func.count()).select_from(Incident)) or 0
            alerts = session.scalar(select(func.count()).select_from(Alert)) or 0
            statuses = list(session.scalars(select(Incident.status)))
        return incidents, alerts, statuses

    post_alerts(base, ["redis-1:9121", "redis-2:9121"])
    wait_until(lambda: counts()[:2] == (1, 2), message="one incident for the group")
    with rt.reading() as session:
        incident = session.scalar(select(Incident))
        assert incident is not None and incident.severity == "SEV1_CRITICAL"
        assert incident.service.name == "redis-prod" and incident.source == "webhook"
    # A new member of the group makes Alertmanager re-send the whole group: same incident.
    post_alerts(base, ["redis-1:9121", "redis-2:9121", "redis-3:9121"])
    wait_until(lambda: counts()[1] == 3, message="third alert stored")
    time.sleep(2.5)  # more group_interval flushes
    assert counts()[0] == 1
    post_alerts(base, ["redis-1:9121", "redis-2:9121", "redis-3:9121"], resolved=True)
    wait_until(lambda: counts()[2] == ["RESOLVED"], message="incident resolved")
    assert counts()[:2] == (1, 3)
