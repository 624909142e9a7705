"""``GET /api/v1/metrics/``: counts and MTTD/MTTA/MTTR (mean, p50, p90)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.kpis import percentile
from storage.models import Incident
from tests.api_helpers import Api

T0 = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


def set_times(api: Api, short_id: str, **times: datetime | None) -> None:
    with api.rt.transaction() as session:
        incident = session.query(Incident).filter(Incident.short_id == short_id).one()
        for name, value in times.items():
            setattr(incident, name, value)


@pytest.fixture
def three(api: Api) -> Api:
    a = api.declare(title="A", severity="SEV2_HIGH")["short_id"]
    b = api.declare(title="B", severity="SEV2_HIGH", service="postgres-main")["short_id"]
    c = api.declare(title="C", severity="SEV1_CRITICAL")["short_id"]
    set_times(
        api,
        a,
        created_at=T0,
        detected_at=T0 - timedelta(seconds=30),
        acknowledged_at=T0 + timedelta(seconds=60),
        resolved_at=T0 + timedelta(seconds=600),
        status="RESOLVED",
    )
    set_times(
        api,
        b,
        created_at=T0 + timedelta(days=1),
        acknowledged_at=T0 + timedelta(days=1, seconds=120),
        status="ACKNOWLEDGED",
    )
    set_times(api, c, created_at=T0 + timedelta(days=40))
    return api


def test_counts_and_durations(three: Api) -> None:
    response = three.client.get("/api/v1/metrics/", headers=three.auth("viewer"))
    assert response.status_code == 200
    data = response.json()
    assert data["total"] == 3 and data["open"] == 2
    assert data["by_status"] == {"TRIGGERED": 1, "ACKNOWLEDGED": 1, "MITIGATED": 0, "RESOLVED": 1}
    assert data["by_severity"]["SEV2_HIGH"] == 2 and data["by_severity"]["SEV1_CRITICAL"] == 1
    assert data["mtta"] == {"count": 2, "mean": 90.0, "p50": 90.0, "p90": 114.0}
    assert data["mttr"] == {"count": 1, "mean": 600.0, "p50": 600.0, "p90": 600.0}
    assert data["mttd"] == {"count": 1, "mean": 30.0, "p50": 30.0, "p90": 30.0}
    assert data["groups"] is None


def test_grouping_and_period(three: Api) -> None:
    headers = three.auth("viewer")
    by_severity = three.client.get("/api/v1/metrics/?by=severity", headers=headers).json()["groups"]
    assert set(by_severity) == {"SEV1_CRITICAL", "SEV2_HIGH"}
    assert by_severity["SEV2_HIGH"]["mtta"]["count"] == 2
    by_service = three.client.get("/api/v1/metrics/?by=service", headers=headers).json()["groups"]
    assert by_service["postgres-main"]["total"] == 1 and by_service["redis-prod"]["total"] == 2
    by_month = three.client.get("/api/v1/metrics/?by=month", headers=headers).json()["groups"]
    assert set(by_month) == {"2024-05", "2024-06"}
    by_week = three.client.get("/api/v1/metrics/?by=week", headers=headers).json()["groups"]
    assert "2024-W18" in by_week
    window = three.client.get(
        "/api/v1/metrics/?since=2024-05-02T12:00:00Z&until=2024-06-01T00:00:00", headers=headers
    ).json()
    assert window["total"] == 1 and window["mtta"]["mean"] == 120.0
    assert window["since"] == "2024-05-02T12:00:00+00:00"
    for bad in ("by=year", "since=not-a-date"):
        response = three.client.get(f"/api/v1/metrics/?{bad}", headers=headers)
        assert response.status_code == 400 and response.json()["detail"]


def test_empty() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 0.0], 0.9) == 9.0
