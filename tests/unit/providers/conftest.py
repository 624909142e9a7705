"""Fixtures for provider tests: a sample incident/notification, a started HttpRecorder, an
HttpClient allowed to reach 127.0.0.1, and the vendor schemas vendored in ``tests/data/schemas``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from providers.base import IncidentView, Notification
from providers.http import HttpClient
from tests.fakes.receivers import HttpRecorder

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMAS_DIR = REPO_ROOT / "tests" / "data" / "schemas"


def make_incident(**overrides: Any) -> IncidentView:
    """SEV1 on redis-prod, team SRE Core, short_id INC-A1B2C3 (fields overridable)."""
    values: dict[str, Any] = {
        "id": 42,
        "short_id": "INC-A1B2C3",
        "title": "Redis primary unreachable",
        "description": "All writes to redis-prod fail with connection refused.",
        "severity": "SEV1_CRITICAL",
        "status": "TRIGGERED",
        "service_name": "redis-prod",
        "team_name": "SRE Core",
        "lead_name": "Alice Martin",
        "lead_email": "alice@example.com",
        "incident_url": "https://imas.example.com/incidents/INC-A1B2C3",
        "created_at": datetime(2024, 5, 17, 9, 30, 0, tzinfo=UTC),
        "runbook_url": "https://wiki.example.com/runbooks/redis",
        "lid_url": "https://docs.google.com/document/d/lid-a1b2c3/edit",
        "war_room_channel_id": "C0WARROOM01",
        "war_room_url": "https://example.slack.com/archives/C0WARROOM01",
    }
    values.update(overrides)
    return IncidentView(**values)


def make_notification(
    event: str = "created",
    *,
    text: str | None = None,
    actor: str | None = "Bob Durand",
    **incident_overrides: Any,
) -> Notification:
    return Notification(
        event=event, incident=make_incident(**incident_overrides), text=text, actor=actor
    )


@pytest.fixture
def incident() -> IncidentView:
    return make_incident()


@pytest.fixture
def notification() -> Notification:
    return make_notification()


@pytest.fixture
def recorder() -> Iterator[HttpRecorder]:
    with HttpRecorder() as rec:
        yield rec


@pytest.fixture
def http() -> HttpClient:
    """Reaches 127.0.0.1; short timeouts keep fault tests fast."""
    return HttpClient(connect_timeout=1.0, read_timeout=0.5, allow_private=True)


def schema_path(name: str) -> Path:
    path = SCHEMAS_DIR / name
    if not path.is_file():
        pytest.fail(
            f"vendor schema {name} not found at {path}: it is vendored in tests/data/schemas "
            "(see SOURCE.md there)"
        )
    return path


@pytest.fixture(scope="session")
def pagerduty_schema() -> dict[str, Any]:
    """The Events API v2 request-body schema, with the components it references."""
    doc = json.loads(schema_path("pagerduty-events-v2.openapiv3.json").read_text())
    body = doc["paths"]["/enqueue"]["post"]["requestBody"]["content"]["application/json"]
    schema = dict(body["schema"])
    schema["components"] = doc["components"]
    return schema


def _strip_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).strip(): _strip_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_keys(v) for v in value]
    return value


@pytest.fixture(scope="session")
def opsgenie_definitions() -> dict[str, Any]:
    """``definitions`` from opsgenie-alert.yaml, key whitespace stripped (``priority :``)."""
    return _strip_keys(yaml.safe_load(schema_path("opsgenie-alert.yaml").read_text()))  # type: ignore[no-any-return]


def opsgenie_schema(definitions: dict[str, Any], name: str) -> dict[str, Any]:
    """A JSON Schema for definition ``name`` (refs resolved within ``definitions``)."""
    return {"$ref": f"#/definitions/{name}", "definitions": definitions}
