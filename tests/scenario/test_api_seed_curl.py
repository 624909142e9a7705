"""The seed guide's "Option B: Via l'API", replayed as written against a running server:

    TOKEN=$(curl -s -X POST https://imas.example.com/api/auth/token/ \\
      -H "Content-Type: application/json" \\
      -d '{"username": "admin", "password": "your-password"}' | jq -r '.token')
    SERVICE_ID=$(curl -s -X GET "https://imas.example.com/api/v1/services/?search=redis-prod" \\
      -H "Authorization: Token $TOKEN" | jq -r '.results[0].id')
    curl -X POST https://imas.example.com/api/v1/incidents/ \\
      -H "Authorization: Token $TOKEN" \\
      -H "Content-Type: application/json" \\
      -d '{ "title": ..., "description": ..., "service": "'$SERVICE_ID'", "severity": "SEV2_HIGH" }'

(with our host instead of imas.example.com), after ``imas user create admin --role admin``.
The incident then gets its war room and its announcement, as from Slack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from bot.presenter import incident_json
from handlers.cli import main
from storage import incidents as store
from tests.scenario import test_seed_guide as seed_guide
from tests.scenario.conftest import SEED_CHANNEL, wait_until

DESCRIPTION = "Test de notification - connexion timeout sur tous les nœuds"
# Step 3's -d argument, exactly as the shell builds it: '...'$SERVICE_ID'...'
CREATE_BODY = """{
    "title": "[TEST] Redis Cluster Down",
    "description": "Test de notification - connexion timeout sur tous les nœuds",
    "service": "'$SERVICE_ID'",
    "severity": "SEV2_HIGH"
  }"""


SEED_SHELL = """
# 1. Obtenir un token d'authentification
TOKEN=$(curl -s -X POST https://imas.example.com/api/auth/token/ \\
  -H "Content-Type: application/json" \\
  -d '{"username": "admin", "password": "your-password"}' | jq -r '.token')

# 2. Récupérer l'ID du service
SERVICE_ID=$(curl -s -X GET "https://imas.example.com/api/v1/services/?search=redis-prod" \\
  -H "Authorization: Token $TOKEN" | jq -r '.results[0].id')

# 3. Créer l'incident
curl -X POST https://imas.example.com/api/v1/incidents/ \\
  -H "Authorization: Token $TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "title": "[TEST] Redis Cluster Down",
    "description": "Test de notification - connexion timeout sur tous les nœuds",
    "service": "'$SERVICE_ID'",
    "severity": "SEV2_HIGH"
  }'
"""


def create_admin(database_url: str) -> None:
    env = {"IMAS_DATABASE_URL": database_url, "IMAS_SECRET_KEY": "test-secret-key"}
    result = CliRunner().invoke(
        main, ["user", "create", "admin", "--role", "admin"], input="your-password\n", env=env
    )
    assert result.exit_code == 0, result.output
    assert "user admin created with role admin" in result.output


def wait_for_orchestration(rt: Any) -> dict[str, Any]:
    def finished() -> Any:
        with rt.transaction() as session:
            _n, rows = store.list_incidents(session)
            if not rows:
                return None
            data = incident_json(session, rt, rows[0], detail=True)
            states = {d["state"] for d in data["deliveries"]}
            return data if states <= {"done"} and data["war_room_channel_id"] else None

    return dict(wait_until(finished, message="orchestration to finish"))


def check_slack(fake_slack: Any, data: dict[str, Any]) -> None:
    announcements = [
        m
        for m in fake_slack.messages(SEED_CHANNEL)
        if m.get("user") == fake_slack.bot_user_id and not m.get("thread_ts")
    ]
    assert len(announcements) == 1
    blocks = announcements[0]["blocks"]
    assert blocks[0]["text"]["text"] == "🟠 [TEST] Redis Cluster Down - redis-prod"
    assert "connexion timeout" in str(blocks) and f"<#{data['war_room_channel_id']}>" in str(blocks)
    room = fake_slack.channel(data["war_room_channel_id"])
    assert "SEV2_HIGH" in room.topic and "redis-prod" in room.topic


def test_seed_api_sequence(
    tmp_path: Path, database_url: str, start_server: Any, fake_slack: Any
) -> None:
    seed_guide.apply_seed_config(tmp_path, database_url)
    create_admin(database_url)
    server = start_server()
    host = f"http://127.0.0.1:{server.port}"

    # 1. TOKEN=$(curl -s -X POST .../api/auth/token/ ... | jq -r '.token')
    login = requests.post(
        f"{host}/api/auth/token/",
        headers={"Content-Type": "application/json"},
        data='{"username": "admin", "password": "your-password"}',
        timeout=10,
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]

    # 2. SERVICE_ID=$(curl -s -X GET ".../api/v1/services/?search=redis-prod" ... | jq -r '.results[0].id')
    services = requests.get(
        f"{host}/api/v1/services/?search=redis-prod",
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert services.status_code == 200, services.text
    service_id = services.json()["results"][0]["id"]
    jq_output = str(service_id)  # jq -r prints the number as text

    # 3. curl -X POST .../api/v1/incidents/ -d '{... "service": "'$SERVICE_ID'" ...}'
    body = CREATE_BODY.replace("'$SERVICE_ID'", jq_output)
    assert f'"service": "{service_id}"' in body
    created = requests.post(
        f"{host}/api/v1/incidents/",
        data=body.encode("utf-8"),
        timeout=10,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert (
        incident["title"] == "[TEST] Redis Cluster Down" and incident["description"] == DESCRIPTION
    )
    assert incident["service"] == "redis-prod" and incident["severity"] == "SEV2_HIGH"
    assert incident["status"] == "TRIGGERED" and incident["team"] == "SRE Core"

    data = wait_for_orchestration(server.rt)
    assert data["short_id"] == incident["short_id"]
    check_slack(fake_slack, data)
    types = [(e["type"], e["message"]) for e in data["timeline"]]
    assert ("ALERT_SENT", "Notification sent to Slack (SRE Core)") in types


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None,
    reason="curl and jq are needed to run the seed's shell lines",
)
def test_seed_curl_commands_verbatim(
    tmp_path: Path, database_url: str, start_server: Any, fake_slack: Any
) -> None:
    """The seed's shell block itself, through bash, curl and jq; only the host replaced."""
    seed_guide.apply_seed_config(tmp_path, database_url)
    create_admin(database_url)
    server = start_server()
    script = "set -euo pipefail\n" + SEED_SHELL.replace(
        "https://imas.example.com", f"http://127.0.0.1:{server.port}"
    )
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    incident = json.loads(result.stdout)
    assert incident["service"] == "redis-prod" and incident["short_id"].startswith("INC-")
    check_slack(fake_slack, wait_for_orchestration(server.rt))
