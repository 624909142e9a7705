"""Helpers shared by the REST API and webhook tests: an in-process application with a
seeded catalog, one token per role, and row counts to prove that rejections write
nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.runtime import Runtime
from handlers.app import create_app
from storage import auth
from storage.models import Alert, AlertRule, Incident, OutboxItem, Service, Team, TimelineEvent

ROLES = ("viewer", "responder", "manager", "admin")
WEBHOOK_TOKEN = "shared-webhook-token-0123456789"
SENTRY_SECRET = "sentry-client-secret-0123456789"
ALERTS = Path(__file__).resolve().parent / "data" / "alerts"
COUNTED = {"incidents": Incident, "alerts": Alert, "outbox": OutboxItem, "timeline": TimelineEvent}

# Alerts about redis-prod open incidents and resolve them; other alerts are only stored.
DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "redis",
        "match": {"labels": {"service": "redis-prod"}},
        "auto_create": True,
        "auto_resolve": True,
    },
    {
        "name": "postgres",
        "source": "custom",
        "service": "postgres-main",
        "auto_create": True,
        "auto_resolve": True,
        "match": {"alertname": "Disk.*"},
    },
    {
        "name": "grafana",
        "source": "grafana",
        "service": "redis-prod",
        "auto_create": True,
        "auto_resolve": True,
    },
    {
        "name": "datadog",
        "source": "datadog",
        "service": "redis-prod",
        "auto_create": True,
        "auto_resolve": True,
    },
    {
        "name": "sentry",
        "source": "sentry",
        "service": "redis-prod",
        "auto_create": True,
        "auto_resolve": True,
    },
]


def load_alert(name: str) -> Any:
    return json.loads((ALERTS / name).read_text(encoding="utf-8"))


def row_counts(rt: Runtime) -> dict[str, int]:
    with rt.transaction() as session:
        return {
            name: session.scalar(select(func.count()).select_from(model)) or 0
            for name, model in COUNTED.items()
        }


def seed(rt: Runtime, *, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Team SRE Core, services redis-prod / postgres-main / legacy (inactive), the alert
    rules, and one API token per role. Returns ids and tokens."""
    with rt.transaction() as session:
        team = Team(name="SRE Core", slack_channel_id="C0123456789")
        session.add(team)
        session.flush()
        redis = Service(
            name="redis-prod",
            owner_team_id=team.id,
            criticality="TIER_1_CRITICAL",
            runbook_url="https://wiki.example.com/runbooks/redis",
        )
        postgres = Service(name="postgres-main", owner_team_id=team.id)
        legacy = Service(name="legacy", owner_team_id=team.id, is_active=False)
        session.add_all([redis, postgres, legacy])
        for position, rule in enumerate(DEFAULT_RULES if rules is None else rules):
            session.add(AlertRule(name=rule["name"], position=position, spec=rule))
        session.flush()
        tokens = {
            role: auth.create_token(session, name=f"{role}-token", role=role)[1] for role in ROLES
        }
        return {
            "team_id": team.id,
            "service_id": redis.id,
            "postgres_id": postgres.id,
            "tokens": tokens,
        }


@dataclass
class Api:
    rt: Runtime
    client: TestClient
    tokens: dict[str, str]
    service_id: int
    extra: dict[str, Any] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Token {self.tokens[role]}"}

    def counts(self) -> dict[str, int]:
        return row_counts(self.rt)

    def declare(self, **body: Any) -> dict[str, Any]:
        data = {"title": "Redis down", "service": self.service_id, "severity": "SEV2_HIGH", **body}
        response = self.client.post("/api/v1/incidents/", json=data, headers=self.auth("admin"))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def webhook(self, source: str, payload: Any, **headers: str) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Authorization": f"Bearer {WEBHOOK_TOKEN}",
            "Content-Type": "application/json",
            **headers,
        }
        return self.client.post(f"/api/v1/webhooks/{source}/", content=body, headers=headers)


def api_fixture(
    make_settings: Callable[..., Any], *, raise_errors: bool = True, **overrides: Any
) -> Iterator[Api]:
    """Body of the ``api`` fixtures: yields an ``Api``, closes everything after. With
    ``raise_errors`` False, a server error is a 500 response instead of an exception."""
    settings = make_settings(
        **{
            "webhook_token": WEBHOOK_TOKEN,
            "sentry_client_secret": SENTRY_SECRET,
            "max_body_bytes": 65536,
            "base_url": "https://imas.example.com",
            **overrides,
        }
    )
    rt = Runtime.build(settings)
    seeded = seed(rt)
    with TestClient(create_app(rt), raise_server_exceptions=raise_errors) as client:
        yield Api(
            rt=rt,
            client=client,
            tokens=seeded["tokens"],
            service_id=seeded["service_id"],
            extra=seeded,
        )
    rt.close()
