"""``GET /api/v1/audit/`` (admin only, filters, pages, 400 on bad input) and the audit rows
written by the login route (``token.create``; ``auth.login`` denied, without the
password)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from handlers.api.auth import Principal
from storage import audit, auth
from storage.models import AuditEntry
from tests.api_helpers import Api

AUDIT = "/api/v1/audit/"
LOGIN = "/api/auth/token/"
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seed_entries(api: Api) -> None:
    specs = [
        ("incident.acknowledge", "U0ALICE01", "slack", "incident", "INC-AAAAAA", "ok"),
        ("incident.resolve", "U0ALICE01", "slack", "incident", "INC-AAAAAA", "ok"),
        ("incident.reopen", "7", "api", "incident", "INC-BBBBBB", "denied"),
        ("token.create", "bob", "cli", "token", "3", "ok"),
        ("config.apply", None, "system", "config", "imas.yml", "ok"),
    ]
    with api.rt.transaction() as session:
        for minutes, (action, ref, door, ttype, target, outcome) in enumerate(specs):
            entry = audit.record(
                session,
                actor=ref or "IMAS",
                actor_kind="system" if door == "system" else "cli",
                actor_ref=ref,
                door=door,
                action=action,
                target_type=ttype,
                target=target,
                outcome=outcome,
                detail="role too low" if outcome == "denied" else None,
            )
            entry.at = BASE + timedelta(minutes=minutes)


def all_rows(api: Api) -> list[dict[str, Any]]:
    with api.rt.transaction() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [audit.entry_json(row) for row in rows]


def test_admin_only(api: Api) -> None:
    assert api.client.get(AUDIT).status_code == 401
    for role in ("viewer", "responder", "manager"):
        response = api.client.get(AUDIT, headers=api.auth(role))
        assert response.status_code == 403, role
        assert "needs the admin role" in response.json()["detail"]
    response = api.client.get(AUDIT, headers=api.auth("admin"))
    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_filters_newest_first_and_pages(api: Api) -> None:
    seed_entries(api)
    headers = api.auth("admin")

    def actions(query: str) -> list[str]:
        response = api.client.get(AUDIT + query, headers=headers)
        assert response.status_code == 200, response.text
        return [row["action"] for row in response.json()["results"]]

    assert actions("") == [
        "config.apply",
        "token.create",
        "incident.reopen",
        "incident.resolve",
        "incident.acknowledge",
    ]
    assert actions("?action=incident") == [
        "incident.reopen",
        "incident.resolve",
        "incident.acknowledge",
    ]
    assert actions("?action=incident.re") == ["incident.reopen", "incident.resolve"]
    assert actions("?actor_ref=U0ALICE01") == ["incident.resolve", "incident.acknowledge"]
    assert actions("?actor=IMAS") == ["config.apply"]
    assert actions("?door=API") == ["incident.reopen"]
    assert actions("?target_type=token") == ["token.create"]
    assert actions("?target=INC-AAAAAA&action=incident.ack") == ["incident.acknowledge"]
    assert actions("?outcome=denied") == ["incident.reopen"]
    assert actions("?since=2026-03-01T12:03:00Z") == ["config.apply", "token.create"]
    assert actions("?until=2026-03-01T12:01:00%2B00:00") == ["incident.acknowledge"]
    assert actions("?since=2026-03-01T12:04:00") == ["config.apply"]  # naive: UTC

    first = api.client.get(AUDIT + "?page_size=2", headers=headers).json()
    assert first["count"] == 5 and len(first["results"]) == 2
    assert first["next"] == "https://imas.example.com/api/v1/audit/?page_size=2&page=2"
    last = api.client.get(AUDIT + "?page_size=2&page=3", headers=headers).json()
    assert [r["action"] for r in last["results"]] == ["incident.acknowledge"]
    assert last["next"] is None and last["previous"]
    row = last["results"][0]
    assert row["at"] == BASE.isoformat() and row["actor_ref"] == "U0ALICE01"
    assert set(row) == {
        "id",
        "at",
        "actor",
        "actor_kind",
        "actor_ref",
        "door",
        "action",
        "target_type",
        "target",
        "changes",
        "outcome",
        "detail",
        "request_id",
    }


@pytest.mark.parametrize(
    "query",
    [
        "?since=yesterday",
        "?until=2026-13-45",
        "?since=",
        "?outcome=maybe",
        "?door=window",
        "?page=0",
        "?page_size=100000",
        "?action=" + "x" * 65,
    ],
)
def test_bad_filters_are_400(api: Api, query: str) -> None:
    response = api.client.get(AUDIT + query, headers=api.auth("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_login_is_audited_without_secrets(api: Api) -> None:
    with api.rt.transaction() as session:
        auth.create_user(session, username="carol", password="carol-secret-pw", role="manager")
    denied = api.client.post(LOGIN, json={"username": "carol", "password": "wrong-guess-pw"})
    assert denied.status_code == 400
    unknown = api.client.post(LOGIN, json={"username": "nobody", "password": "nobody-pw-123"})
    assert unknown.status_code == 400
    ok = api.client.post(LOGIN, json={"username": "carol", "password": "carol-secret-pw"})
    assert ok.status_code == 200
    token = ok.json()["token"]

    rows = all_rows(api)
    assert [(r["action"], r["outcome"], r["actor"]) for r in rows] == [
        ("auth.login", "denied", "carol"),
        ("auth.login", "denied", "nobody"),
        ("token.create", "ok", "carol"),
    ]
    assert rows[0]["detail"].startswith("wrong password")
    assert rows[1]["detail"].startswith("unknown user")
    assert all(r["door"] == "api" and r["actor_kind"] == "api_user" for r in rows)
    created = rows[2]
    assert created["actor_ref"] == "carol" and created["target_type"] == "token"
    with api.rt.transaction() as session:
        found = auth.find_token(session, token=token)
        assert found is not None and created["target"] == str(found.id)
        token_hash = found.token_hash
    assert created["changes"] == {"name": [None, "login:carol"], "role": [None, "manager"]}
    dumped = json.dumps(rows)
    for secret in ("carol-secret-pw", "wrong-guess-pw", "nobody-pw-123", token, token_hash):
        assert secret not in dumped

    listed = api.client.get(AUDIT + "?action=auth.login&outcome=denied", headers=api.auth("admin"))
    assert listed.json()["count"] == 2


def test_principal_audit_actor() -> None:
    user = Principal(label="carol", role="admin", token_id=4, user_id=2)
    assert user.audit_actor().fields() == {
        "actor": "carol",
        "actor_kind": "api_user",
        "actor_ref": "carol",
        "door": "api",
        "request_id": None,
    }
    bare = Principal(label="token ci", role="admin", token_id=4).audit_actor("req-1")
    assert (bare.kind, bare.ref, bare.door, bare.request_id) == ("api_token", "4", "api", "req-1")
    hook = Principal(label="webhook", role="responder", kind="webhook").audit_actor()
    assert (hook.kind, hook.door) == ("webhook", "webhook")


def test_openapi_documents_the_audit_route(api: Api) -> None:
    schema = api.client.get("/api/schema").json()
    route = schema["paths"]["/api/v1/audit/"]["get"]
    names = {p["name"] for p in route["parameters"]}
    assert {"action", "actor_ref", "door", "target", "outcome", "since", "until"} <= names
    assert {"page", "page_size"} <= names
    assert {"200", "400", "401", "403"} <= set(route["responses"])
    assert "AuditEntryOut" in schema["components"]["schemas"]
