"""Every REST route: roles (401 / 403 / 2xx), input errors (400 / 404 / 409 / 413), and
the proof that no rejection writes anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from storage import auth
from tests.api_helpers import ROLES, Api


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {ref} is replaced by a fresh incident's short id
    role: str
    ok: int
    body: Any = None
    setup: Callable[[Api, str], None] | None = None


def _resolve(api: Api, ref: str) -> None:
    response = api.client.post(f"/api/v1/incidents/{ref}/resolve/", headers=api.auth("admin"))
    assert response.status_code == 200, response.text


CREATE = {"title": "Cache down", "service": "redis-prod", "severity": "SEV3_MEDIUM"}
ROUTES = [
    Route("GET", "/api/v1/services/", "viewer", 200),
    Route("GET", "/api/v1/teams/", "viewer", 200),
    Route("GET", "/api/v1/incidents/", "viewer", 200),
    Route("POST", "/api/v1/incidents/", "responder", 201, CREATE),
    Route("GET", "/api/v1/incidents/{ref}/", "viewer", 200),
    Route("PATCH", "/api/v1/incidents/{ref}/", "responder", 200, {"title": "Renamed"}),
    Route("POST", "/api/v1/incidents/{ref}/acknowledge/", "responder", 200),
    Route("POST", "/api/v1/incidents/{ref}/mitigate/", "responder", 200, {"note": "failover"}),
    Route("POST", "/api/v1/incidents/{ref}/resolve/", "responder", 200, {"summary": "fixed"}),
    Route("POST", "/api/v1/incidents/{ref}/reopen/", "manager", 200, None, _resolve),
    Route("POST", "/api/v1/incidents/{ref}/notes/", "responder", 201, {"text": "looking"}),
    Route("GET", "/api/v1/incidents/{ref}/timeline/", "viewer", 200),
    Route("GET", "/api/v1/incidents/{ref}/postmortem/", "viewer", 200),
    Route("GET", "/api/v1/incidents/{ref}/followups/", "viewer", 200),
    Route("POST", "/api/v1/incidents/{ref}/followups/", "responder", 201, {"title": "Add alert"}),
    Route("GET", "/api/v1/alerts/", "viewer", 200),
    Route("GET", "/api/v1/metrics/", "viewer", 200),
    Route(
        "POST",
        "/api/v1/webhooks/custom/",
        "responder",
        202,
        {"name": "Disk full", "service": "postgres-main"},
    ),
]


def call(api: Api, route: Route, ref: str, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if route.body is not None:
        kwargs["json"] = route.body
    return api.client.request(route.method, route.path.replace("{ref}", ref), **kwargs)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_route_roles(api: Api, route: Route) -> None:
    ref = api.declare()["short_id"]
    if route.setup:
        route.setup(api, ref)
    before = api.counts()

    missing = call(api, route, ref, {})
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    assert missing.headers["WWW-Authenticate"] == "Token"
    wrong = call(api, route, ref, {"Authorization": "Token imas_not-a-real-token"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "Invalid token."}
    assert "imas_not-a-real-token" not in wrong.text
    rank = ROLES.index(route.role)
    for low in ROLES[:rank]:
        denied = call(api, route, ref, api.auth(low))
        assert denied.status_code == 403, (low, denied.text)
        assert f"needs the {route.role} role" in denied.json()["detail"]
    assert api.counts() == before

    allowed = call(api, route, ref, api.auth(route.role))
    assert allowed.status_code == route.ok, allowed.text
    higher = ROLES[rank + 1] if rank + 1 < len(ROLES) else None
    if route.method == "GET" and higher:
        assert call(api, route, ref, api.auth(higher)).status_code == route.ok


def test_revoked_token_is_refused(api: Api) -> None:
    with api.rt.transaction() as session:
        assert auth.revoke_token(session, ref="viewer-token") == 1
    response = api.client.get("/api/v1/services/", headers=api.auth("viewer"))
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."


@pytest.mark.parametrize("header", ["Bearer {t}", "Token {t}", "token {t}", "BEARER {t}"])
def test_token_header_forms(api: Api, header: str) -> None:
    value = header.format(t=api.tokens["viewer"])
    assert api.client.get("/api/v1/teams/", headers={"Authorization": value}).status_code == 200


@pytest.mark.parametrize(
    "header,detail",
    [
        ("Token", "Invalid token header. No credentials provided."),
        ("Token a b", "Invalid token header. Token string should not contain spaces."),
        ("Digest abc", "Authentication credentials were not provided."),
        ("Basic !!!", "Invalid basic header. Credentials not correctly base64 encoded."),
    ],
)
def test_malformed_authorization(api: Api, header: str, detail: str) -> None:
    response = api.client.get("/api/v1/teams/", headers={"Authorization": header})
    assert response.status_code == 401 and response.json() == {"detail": detail}


# -- services, teams, pagination --------------------------------------------------------


def test_services_search_and_shape(api: Api) -> None:
    response = api.client.get("/api/v1/services/?search=redis-prod", headers=api.auth("viewer"))
    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": api.service_id,
                "name": "redis-prod",
                "owner_team": "SRE Core",
                "criticality": "TIER_1_CRITICAL",
                "runbook_url": "https://wiki.example.com/runbooks/redis",
                "is_active": True,
            }
        ],
    }
    names = [
        s["name"]
        for s in api.client.get("/api/v1/services/", headers=api.auth("viewer")).json()["results"]
    ]
    assert names == ["legacy", "postgres-main", "redis-prod"]


def test_pagination_links_are_absolute(api: Api) -> None:
    headers = api.auth("viewer")
    first = api.client.get("/api/v1/services/?page_size=2&search=", headers=headers).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["previous"] is None
    assert first["next"] == "https://imas.example.com/api/v1/services/?page_size=2&search=&page=2"
    second = api.client.get(
        first["next"].removeprefix("https://imas.example.com"), headers=headers
    ).json()
    assert [s["name"] for s in second["results"]] == ["redis-prod"]
    assert second["next"] is None
    assert second["previous"] == "https://imas.example.com/api/v1/services/?page_size=2&search="
    bad = api.client.get("/api/v1/services/?page=0", headers=headers)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("page:")
    assert api.client.get("/api/v1/services/?page_size=abc", headers=headers).status_code == 400


def test_teams(api: Api) -> None:
    data = api.client.get("/api/v1/teams/", headers=api.auth("viewer")).json()
    assert data["count"] == 1
    assert data["results"][0]["name"] == "SRE Core"
    assert data["results"][0]["slack_channel_id"] == "C0123456789"


# -- incidents --------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["{id}", "{id_str}", "redis-prod", "REDIS-PROD"])
def test_create_accepts_service_id_or_name(api: Api, service: str) -> None:
    value: Any = (
        api.service_id if service == "{id}" else service.replace("{id_str}", str(api.service_id))
    )
    response = api.client.post(
        "/api/v1/incidents/",
        headers=api.auth("responder"),
        json={
            "title": "[TEST] Redis Cluster Down",
            "description": "timeouts",
            "service": value,
            "severity": "SEV2_HIGH",
        },
    )
    assert response.status_code == 201, response.text
    data = response.json()
    assert data["service"] == "redis-prod" and data["status"] == "TRIGGERED"
    assert data["source"] == "api" and data["short_id"].startswith("INC-")
    assert data["url"] == f"https://imas.example.com/dashboard/incidents/{data['short_id']}/"
    assert "timeline" not in data


@pytest.mark.parametrize(
    "body,status,detail",
    [
        (
            {"title": "x", "service": "nope", "severity": "SEV2_HIGH"},
            404,
            "Unknown service 'nope'.",
        ),
        (
            {"title": "x", "service": "null", "severity": "SEV2_HIGH"},
            404,
            "Unknown service 'null'.",
        ),
        ({"title": "x", "service": "99999999999999999999", "severity": "SEV2_HIGH"}, 404, None),
        ({"title": "x", "service": "²", "severity": "SEV2_HIGH"}, 404, None),
        (
            {"title": "x", "service": "legacy", "severity": "SEV2_HIGH"},
            400,
            "Service 'legacy' is inactive.",
        ),
        ({"title": "x", "service": "redis-prod", "severity": "SEV9"}, 400, None),
        ({"title": "  ", "service": "redis-prod", "severity": "SEV2_HIGH"}, 400, None),
        ({"title": "x" * 201, "service": "redis-prod", "severity": "SEV2_HIGH"}, 400, None),
        (
            {"title": 5, "service": "redis-prod", "severity": "SEV2_HIGH"},
            400,
            "title: Input should be a valid string",
        ),
        ({"title": "x", "service": True, "severity": "SEV2_HIGH"}, 400, None),
        ({"title": "x", "severity": "SEV2_HIGH"}, 400, "service: Field required"),
        (
            {"title": "x", "service": "redis-prod", "severity": "SEV2_HIGH", "scopes": ["nope"]},
            404,
            "Unknown impact scope 'nope'.",
        ),
        ({"title": "a\u0000b", "service": "redis-prod", "severity": "SEV2_HIGH"}, 400, None),
        (["not", "an", "object"], 400, None),
    ],
)
def test_create_rejections_write_nothing(
    api: Api, body: Any, status: int, detail: str | None
) -> None:
    before = api.counts()
    response = api.client.post("/api/v1/incidents/", headers=api.auth("responder"), json=body)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)
    if detail:
        assert response.json()["detail"] == detail
    assert api.counts() == before


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"nul",
        b'{"title": NaN}',
        b"[" * 100 + b"]" * 100,
        b'{"title": 1e999}',
        b"\xff\xfe\x00",
    ],
)
def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    before = api.counts()
    response = api.client.post(
        "/api/v1/incidents/",
        headers={**api.auth("responder"), "Content-Type": "application/json"},
        content=raw,
    )
    assert response.status_code == 400, response.text
    assert api.counts() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents/",
        "/api/v1/incidents/{ref}/notes/",
        "/api/v1/incidents/{ref}/",
        "/api/v1/webhooks/alertmanager/",
        "/api/auth/token/",
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_bodies_are_413(api: Api, path: str, chunked: bool) -> None:
    ref = api.declare()["short_id"]
    before = api.counts()
    big = b'{"title": "' + b"x" * 70000 + b'"}'
    content: Any = iter([big[:30000], big[30000:]]) if chunked else big
    method = "PATCH" if path.endswith("{ref}/") else "POST"
    headers = {**api.auth("admin"), "Content-Type": "application/json"}
    if "webhooks" in path:
        headers["Authorization"] = "Bearer shared-webhook-token-0123456789"
    response = api.client.request(
        method, path.replace("{ref}", ref), headers=headers, content=content
    )
    assert response.status_code == 413, response.text
    assert "too large" in response.json()["detail"]
    assert api.counts() == before


def test_idempotency_key(api: Api) -> None:
    headers = {**api.auth("responder"), "Idempotency-Key": "deploy-42"}
    first = api.client.post("/api/v1/incidents/", headers=headers, json=CREATE)
    assert first.status_code == 201
    counts = api.counts()
    again = api.client.post("/api/v1/incidents/", headers=headers, json=CREATE)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert api.counts() == counts
    other = api.client.post(
        "/api/v1/incidents/", headers={**headers, "Idempotency-Key": "other"}, json=CREATE
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    too_long = api.client.post(
        "/api/v1/incidents/", headers={**headers, "Idempotency-Key": "k" * 201}, json=CREATE
    )
    assert too_long.status_code == 400


def test_another_callers_idempotency_key_returns_none_of_their_data(api: Api) -> None:
    """A key is the caller's own: replaying someone else's (even a manager's private
    incident's) gets a 409 that names nothing of theirs, and writes nothing."""
    secret = {**CREATE, "title": "Acquisition leak", "private": True}
    owner = {**api.auth("manager"), "Idempotency-Key": "shared-42"}
    first = api.client.post("/api/v1/incidents/", headers=owner, json=secret)
    assert first.status_code == 201
    before = api.counts()
    for role in ("viewer", "responder", "admin"):
        replay = api.client.post(
            "/api/v1/incidents/",
            headers={**api.auth(role), "Idempotency-Key": "shared-42"},
            json=CREATE,
        )
        assert replay.status_code == 409, replay.text
        assert "another caller" in replay.text
        assert "Acquisition" not in replay.text and first.json()["short_id"] not in replay.text
    assert api.counts() == before
    mine = api.client.post("/api/v1/incidents/", headers=owner, json=secret)
    assert mine.status_code == 200 and mine.json()["id"] == first.json()["id"]


def test_get_by_id_or_short_id_and_404(api: Api) -> None:
    created = api.declare()
    headers = api.auth("viewer")
    by_id = api.client.get(f"/api/v1/incidents/{created['id']}/", headers=headers).json()
    by_short = api.client.get(
        f"/api/v1/incidents/{created['short_id'].lower()}/", headers=headers
    ).json()
    assert by_id["short_id"] == by_short["short_id"] == created["short_id"]
    assert by_id["timeline"][0]["type"] == "STATUS_CHANGE" and "deliveries" in by_id
    for ref in ("INC-000000", "424242", "99999999999999999999999", "%C2%B2"):
        missing = api.client.get(f"/api/v1/incidents/{ref}/", headers=headers)
        assert missing.status_code == 404 and missing.json()["detail"].startswith("No incident")


def test_private_incidents_are_hidden_below_manager(api: Api) -> None:
    private = api.declare(private=True, title="Secret")
    api.declare(title="Public")
    for role, visible in (
        ("viewer", False),
        ("responder", False),
        ("manager", True),
        ("admin", True),
    ):
        listed = api.client.get("/api/v1/incidents/", headers=api.auth(role)).json()
        assert ("Secret" in [i["title"] for i in listed["results"]]) is visible
        assert listed["count"] == (2 if visible else 1)
        detail = api.client.get(f"/api/v1/incidents/{private['short_id']}/", headers=api.auth(role))
        assert detail.status_code == (200 if visible else 404)
        ack = api.client.post(
            f"/api/v1/incidents/{private['short_id']}/notes/",
            headers=api.auth(role),
            json={"text": "x"},
        )
        # Invisible means absent whatever the role: 404, never a 403 that confirms it exists.
        assert ack.status_code == (201 if visible else 404)


def test_list_filters(api: Api) -> None:
    first = api.declare(title="Redis slow", severity="SEV3_MEDIUM")
    api.declare(title="Postgres down", service="postgres-main", severity="SEV1_CRITICAL")
    api.client.post(f"/api/v1/incidents/{first['short_id']}/resolve/", headers=api.auth("admin"))
    headers = api.auth("viewer")

    def titles(query: str) -> list[str]:
        response = api.client.get(f"/api/v1/incidents/?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return sorted(i["title"] for i in response.json()["results"])

    assert titles("") == ["Postgres down", "Redis slow"]
    assert titles("status=RESOLVED") == ["Redis slow"]
    assert titles("status=open") == ["Postgres down"]
    assert titles("status=triggered,resolved") == ["Postgres down", "Redis slow"]
    assert titles("severity=SEV1_CRITICAL") == ["Postgres down"]
    assert titles("service=redis-prod") == ["Redis slow"]
    assert titles(f"service={api.service_id}") == ["Redis slow"]
    assert titles("service=99999999999999") == []
    assert titles("team=SRE%20Core") == ["Postgres down", "Redis slow"]
    assert titles("search=postgres") == ["Postgres down"]
    assert titles("since=2000-01-01T00:00:00") == ["Postgres down", "Redis slow"]
    assert titles("since=2999-01-01T00:00:00Z") == []
    for bad in ("status=NOPE", "severity=SEV9", "since=yesterday"):
        response = api.client.get(f"/api/v1/incidents/?{bad}", headers=headers)
        assert response.status_code == 400, bad
        assert response.json()["detail"].split(":")[0] in ("status", "severity", "since")


def test_lifecycle_and_conflicts(api: Api) -> None:
    ref = api.declare()["short_id"]
    headers = api.auth("responder")
    base = f"/api/v1/incidents/{ref}"
    assert (
        api.client.post(f"{base}/acknowledge/", headers=headers).json()["status"] == "ACKNOWLEDGED"
    )
    before = api.counts()
    again = api.client.post(f"{base}/acknowledge/", headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"] == f"{ref} is ACKNOWLEDGED: cannot acknowledge it."
    assert api.counts() == before
    mitigated = api.client.post(
        f"{base}/mitigate/", headers=headers, json={"note": "failed over"}
    ).json()
    assert mitigated["status"] == "MITIGATED" and mitigated["mitigated_at"]
    resolved = api.client.post(
        f"{base}/resolve/", headers=headers, json={"summary": "replaced node"}
    ).json()
    assert resolved["status"] == "RESOLVED" and resolved["resolution_summary"] == "replaced node"
    assert api.client.post(f"{base}/reopen/", headers=headers).status_code == 403
    assert (
        api.client.post(f"{base}/reopen/", headers=api.auth("manager")).json()["status"]
        == "TRIGGERED"
    )
    timeline = api.client.get(f"{base}/timeline/", headers=api.auth("viewer")).json()
    types = [e["type"] for e in timeline["results"]]
    assert types.count("STATUS_CHANGE") == 5 and "NOTE" in types
    assert all(e["source"] == "api:rest" for e in timeline["results"])
    assert any(e["message"] == "failed over" for e in timeline["results"])


def test_patch(api: Api) -> None:
    ref = api.declare()["short_id"]
    headers = api.auth("responder")
    url = f"/api/v1/incidents/{ref}/"
    changed = api.client.patch(
        url,
        headers=headers,
        json={
            "title": "Redis cluster down",
            "description": "all nodes",
            "severity": "sev1",
            "lead": "alice@example.com",
        },
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()
    assert (data["title"], data["description"], data["severity"], data["lead"]) == (
        "Redis cluster down",
        "all nodes",
        "SEV1_CRITICAL",
        "alice@example.com",
    )
    before = api.counts()
    same = api.client.patch(
        url,
        headers=headers,
        json={
            "title": "Redis cluster down",
            "severity": "SEV1_CRITICAL",
            "lead": "alice@example.com",
        },
    )
    assert same.status_code == 200 and api.counts() == before
    assert api.client.patch(url, headers=headers, json={}).status_code == 200
    assert api.counts() == before
    bad = api.client.patch(url, headers=headers, json={"severity": "urgent"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("severity:")
    assert (
        api.client.patch("/api/v1/incidents/INC-000000/", headers=headers, json={}).status_code
        == 404
    )
    assert api.counts() == before


def test_notes(api: Api) -> None:
    ref = api.declare()["short_id"]
    url = f"/api/v1/incidents/{ref}/notes/"
    created = api.client.post(
        url, headers=api.auth("responder"), json={"text": " restarted redis-1 "}
    )
    assert created.status_code == 201
    assert created.json()["type"] == "NOTE" and created.json()["message"] == "restarted redis-1"
    before = api.counts()
    for body in ({"text": "   "}, {}, {"text": ["x"]}):
        assert api.client.post(url, headers=api.auth("responder"), json=body).status_code == 400
    assert api.counts() == before


def test_alerts_listing(api: Api) -> None:
    from tests.api_helpers import load_alert

    assert api.webhook("alertmanager", load_alert("alertmanager_firing.json")).status_code == 202
    assert api.webhook("custom", load_alert("custom.json")).status_code == 202
    headers = api.auth("viewer")
    everything = api.client.get("/api/v1/alerts/", headers=headers).json()
    assert everything["count"] == 4
    firing = api.client.get(
        "/api/v1/alerts/?status=firing&source=alertmanager", headers=headers
    ).json()
    assert firing["count"] == 2
    assert {a["incident"] for a in firing["results"]} == {firing["results"][0]["incident"]}
    assert firing["results"][0]["incident"].startswith("INC-")
    assert api.client.get("/api/v1/alerts/?status=bogus", headers=headers).status_code == 400


def test_openapi_document(api: Api) -> None:
    schema = api.client.get("/api/schema").json()
    paths = schema["paths"]
    for path in (
        "/api/auth/token/",
        "/api/v1/services/",
        "/api/v1/teams/",
        "/api/v1/incidents/",
        "/api/v1/incidents/{ref}/",
        "/api/v1/incidents/{ref}/acknowledge/",
        "/api/v1/incidents/{ref}/resolve/",
        "/api/v1/incidents/{ref}/notes/",
        "/api/v1/incidents/{ref}/timeline/",
        "/api/v1/alerts/",
        "/api/v1/metrics/",
        "/api/v1/webhooks/{source}/",
    ):
        assert path in paths, path
    create = paths["/api/v1/incidents/"]["post"]
    body_schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert {"title", "service", "severity"} <= set(body_schema["required"])
    assert "IncidentOut" in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]["Token"]["name"] == "Authorization"
    assert api.client.get("/api/docs").status_code == 200


def test_database_unavailable_is_503(api: Api, tmp_path: Any) -> None:
    from storage.db import make_engine, make_session_factory

    api.rt.sessions = make_session_factory(make_engine(f"sqlite:///{tmp_path}/missing/dir/x.db"))
    response = api.client.get("/api/v1/services/", headers=api.auth("viewer"))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json() == {"detail": "The database is unavailable; retry later."}
    hook = api.webhook("custom", {"name": "Disk full"})
    assert hook.status_code == 503
