"""Issue 10 item 10: REST answers that match the OpenAPI document and never 500."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage.models import Incident, Person
from tests.api_helpers import Api

EDGES = [
    "0001-01-01T00:00:01+00:03",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-00:03",
    "9999-12-31T23:59:59-23:59",
]


@pytest.mark.parametrize("value", EDGES)
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/incidents/", "since"),
        ("/api/v1/metrics/", "since"),
        ("/api/v1/metrics/", "until"),
        ("/api/v1/audit/", "since"),
        ("/api/v1/audit/", "until"),
    ],
)
def test_times_out_of_range_in_utc_are_400(api: Api, path: str, name: str, value: str) -> None:
    response = api.client.get(path, params={name: value}, headers=api.auth("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["field"] == name


def test_times_at_the_edges_that_fit_are_fine(api: Api) -> None:
    for value in ("0001-01-01T00:03:01+00:03", "9999-12-31T23:00:00-00:59", "2026-01-01"):
        response = api.client.get(
            "/api/v1/incidents/", params={"since": value}, headers=api.auth("admin")
        )
        assert response.status_code == 200, response.text


def test_lead_by_non_ascii_email_in_another_case_is_the_same_person(api: Api) -> None:
    first = api.declare(lead="Émilie.Strand@Exämple.com")["short_id"]
    with api.rt.transaction() as session:
        people = session.scalar(select(func.count()).select_from(Person))
        emilie = session.scalar(select(Incident.lead_id).where(Incident.short_id == first))
    for spelling in ("émilie.strand@exämple.com", "ÉMILIE.STRAND@EXÄMPLE.COM"):
        other = api.declare()["short_id"]
        response = api.client.patch(
            f"/api/v1/incidents/{other}/", headers=api.auth("responder"), json={"lead": spelling}
        )
        assert response.status_code == 200, response.text
        with api.rt.transaction() as session:
            lead = session.scalar(select(Incident.lead_id).where(Incident.short_id == other))
        assert lead == emilie
    with api.rt.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == people


def test_login_429_is_documented(api: Api) -> None:
    schema = api.client.get("/api/schema").json()
    responses = schema["paths"]["/api/auth/token/"]["post"]["responses"]
    assert "429" in responses and "Retry-After" in responses["429"]["headers"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/incidents/", {"GET", "POST"}),
        ("PUT", "/api/v1/incidents/INC-AAAAAA/", {"GET", "PATCH"}),
        ("GET", "/api/v1/incidents/INC-AAAAAA/resolve/", {"POST"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
def test_405_lists_every_allowed_method(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    response = api.client.request(method, path, headers=api.auth("admin"))
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_enumerations_are_enums_in_the_schema(api: Api) -> None:
    schema = api.client.get("/api/schema").json()
    paths, models = schema["paths"], schema["components"]["schemas"]

    def param(path: str, name: str) -> dict:
        (found,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == name]
        return found["schema"]

    assert "OPEN" in param("/api/v1/incidents/", "status")["items"]["enum"]
    assert "SEV2_HIGH" in param("/api/v1/incidents/", "severity")["items"]["enum"]
    assert param("/api/v1/alerts/", "status")["enum"] == ["firing", "resolved"]
    assert "service" in param("/api/v1/metrics/", "by")["enum"]
    assert "RESOLVED" in models["IncidentOut"]["properties"]["status"]["enum"]
    assert "SEV1_CRITICAL" in models["IncidentOut"]["properties"]["severity"]["enum"]
    assert models["AlertOut"]["properties"]["status"]["enum"] == ["firing", "resolved"]
    body = paths["/api/v1/incidents/"]["post"]["requestBody"]["content"]["application/json"]
    assert "SEV4_LOW" in body["schema"]["properties"]["severity"]["enum"]
