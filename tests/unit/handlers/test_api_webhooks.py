"""Alert webhooks in-process: authentication, rejections that write nothing, folding,
the suppression window, auto-create / auto-resolve and unrouted alerts."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from storage.models import Alert, AlertRule, Incident, Service, TimelineEvent, utcnow
from tests.api_helpers import SENTRY_SECRET, WEBHOOK_TOKEN, Api, load_alert


def incidents(api: Api) -> list[Incident]:
    with api.rt.transaction() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def alerts(api: Api) -> list[Alert]:
    with api.rt.transaction() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def events(api: Api, incident_id: int) -> list[str]:
    with api.rt.transaction() as session:
        return [
            e.type
            for e in session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == incident_id)
                .order_by(TimelineEvent.id)
            )
        ]


def sign(body: bytes, secret: str = SENTRY_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- authentication and rejections -----------------------------------------------------


def test_authentication(api: Api) -> None:
    body = json.dumps({"name": "Disk full", "service": "postgres-main"}).encode()
    url = "/api/v1/webhooks/custom/"
    before = api.counts()
    assert api.client.post(url, content=body).status_code == 401
    for header in (
        "Bearer wrong",
        f"Bearer {WEBHOOK_TOKEN}x",
        "Token",
        "Bearer é".encode("latin-1"),
    ):
        response = api.client.post(url, content=body, headers={"Authorization": header})
        assert response.status_code == 401, header
        assert WEBHOOK_TOKEN not in response.text
    viewer = api.client.post(url, content=body, headers=api.auth("viewer"))
    assert viewer.status_code == 403
    assert api.counts() == before
    assert api.client.post(url, content=body, headers=api.auth("responder")).status_code == 202
    basic = base64.b64encode(f"grafana:{WEBHOOK_TOKEN}".encode()).decode()
    assert (
        api.client.post(url, content=body, headers={"Authorization": f"Basic {basic}"}).status_code
        == 202
    )


def test_unknown_source_is_404(api: Api) -> None:
    response = api.webhook("nagios", {"alerts": []})
    assert response.status_code == 404 and "expected one of" in response.json()["detail"]


def test_sentry_signature(api: Api) -> None:
    body = json.dumps(load_alert("sentry_issue_alert.json")).encode()
    url = "/api/v1/webhooks/sentry/"
    resource = {"Sentry-Hook-Resource": "event_alert", "Content-Type": "application/json"}
    before = api.counts()
    for signature in ("0" * 64, sign(body, "other-secret"), sign(body + b" ")):
        bad = api.client.post(
            url, content=body, headers={**resource, "Sentry-Hook-Signature": signature}
        )
        assert bad.status_code == 401 and bad.json()["detail"] == "Invalid Sentry-Hook-Signature."
    assert api.client.post(url, content=body, headers=resource).status_code == 401
    # A signature over an invalid body is checked before the body is parsed.
    junk = b"{not json"
    assert (
        api.client.post(
            url, content=junk, headers={**resource, "Sentry-Hook-Signature": "00"}
        ).status_code
        == 401
    )
    assert api.counts() == before
    good = api.client.post(
        url, content=body, headers={**resource, "Sentry-Hook-Signature": sign(body)}
    )
    assert good.status_code == 202, good.text
    assert good.json()["stored"] == 1 and len(good.json()["created_incidents"]) == 1
    signed_junk = api.client.post(
        url, content=junk, headers={**resource, "Sentry-Hook-Signature": sign(junk)}
    )
    assert signed_junk.status_code == 400


@pytest.mark.parametrize(
    "source,payload,message",
    [
        ("alertmanager", b"{", "Invalid JSON"),
        ("alertmanager", b"", "empty"),
        ("alertmanager", b'{"alerts": NaN}', "NaN"),
        ("alertmanager", b"[]", "payload: must be a JSON object"),
        ("alertmanager", b'{"alerts": [{"status": "exploded"}]}', "alerts[0].status"),
        ("custom", b'{"alerts": [{"status": "firing"}]}', "alerts[0].name"),
        ("grafana", b'{"alerts": 3}', "alerts: must be an array"),
        ("datadog", b"null", "payload"),
        ("custom", b'{"name": "x", "starts_at": "yesterday"}', "starts_at"),
    ],
)
def test_malformed_payloads_are_400(api: Api, source: str, payload: bytes, message: str) -> None:
    before = api.counts()
    response = api.webhook(source, payload)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
    assert api.counts() == before


def test_nul_and_lone_surrogates_are_stored_safely(api: Api) -> None:
    payload = b'{"name": "Disk\\u0000 full", "service": "postgres-main", "labels": {"k\\ud800": "v\\udfff"}}'
    response = api.webhook("custom", payload)
    assert response.status_code == 202, response.text
    stored = alerts(api)[0]
    assert stored.name == "Disk\ufffd full" and stored.labels == {"k\ufffd": "v\ufffd"}


# -- Alertmanager: one incident per group, repeats, auto-resolve -------------------------


def test_alertmanager_group_lifecycle(api: Api) -> None:
    firing = load_alert("alertmanager_firing.json")
    first = api.webhook("alertmanager", firing)
    assert first.status_code == 202, first.text
    result = first.json()
    assert result["received"] == 2 and result["stored"] == 2 and result["deduplicated"] == 0
    assert len(result["created_incidents"]) == 1
    [incident] = incidents(api)
    assert incident.short_id == result["created_incidents"][0]
    assert (incident.title, incident.severity, incident.source) == (
        "Redis instance is down",
        "SEV1_CRITICAL",
        "webhook",
    )
    assert incident.detected_at is not None and incident.detected_at.isoformat().startswith(
        "2024-05-02T07:52:26"
    )
    assert "redis-1.example.com:9121 has been unreachable" in incident.description
    assert events(api, incident.id).count("ALERT_RECEIVED") == 2
    assert {a.incident_id for a in alerts(api)} == {incident.id}

    counts = api.counts()
    again = api.webhook("alertmanager", firing).json()
    assert again["created_incidents"] == [] and again["deduplicated"] == 2 and again["stored"] == 0
    assert again["incidents"] == [incident.short_id]
    assert api.counts() == counts
    assert [a.count for a in alerts(api)] == [2, 2]

    resolved = load_alert("alertmanager_resolved.json")
    partial = copy.deepcopy(resolved)
    partial["alerts"] = partial["alerts"][:1]
    assert api.webhook("alertmanager", partial).json()["resolved_incidents"] == []
    assert incidents(api)[0].status == "TRIGGERED"
    done = api.webhook("alertmanager", resolved).json()
    assert done["resolved_incidents"] == [incident.short_id]
    [incident] = incidents(api)
    assert incident.status == "RESOLVED" and incident.resolution_summary == "All alerts resolved"
    assert events(api, incident.id).count("ALERT_RESOLVED") == 2

    counts = api.counts()
    assert api.webhook("alertmanager", resolved).json()["resolved_incidents"] == []
    # A late replay of the old firing notification does not reopen or duplicate anything.
    assert api.webhook("alertmanager", firing).json()["created_incidents"] == []
    assert api.counts() == counts
    assert len(incidents(api)) == 1


def test_new_occurrence_after_the_window_opens_a_new_incident(api: Api) -> None:
    firing = load_alert("alertmanager_firing.json")
    api.webhook("alertmanager", firing)
    api.webhook("alertmanager", load_alert("alertmanager_resolved.json"))
    later = utcnow() + timedelta(minutes=30)
    api.rt.clock = lambda: later
    refire = copy.deepcopy(firing)
    for alert in refire["alerts"]:
        alert["startsAt"] = "2024-05-02T12:00:00Z"
    result = api.webhook("alertmanager", refire).json()
    assert result["stored"] == 2 and len(result["created_incidents"]) == 1
    assert [i.status for i in incidents(api)] == ["RESOLVED", "TRIGGERED"]
    assert len(alerts(api)) == 4


def test_suppression_window_folds_a_flapping_alert(api: Api) -> None:
    body = {"name": "Disk almost full", "service": "postgres-main", "fingerprint": "disk-db1"}
    now = utcnow()
    api.rt.clock = lambda: now
    api.webhook("custom", body)
    api.webhook("custom", {**body, "status": "resolved"})
    [incident] = incidents(api)
    assert incident.status == "RESOLVED"
    soon = now + timedelta(minutes=2)
    api.rt.clock = lambda: soon
    flap = api.webhook("custom", body).json()
    assert flap["deduplicated"] == 1 and flap["stored"] == 0
    assert len(alerts(api)) == 1 and alerts(api)[0].count == 3 and alerts(api)[0].status == "firing"


def test_alerts_without_rule_are_only_stored(api: Api) -> None:
    firing = load_alert("alertmanager_firing.json")
    for alert in firing["alerts"]:
        alert["labels"]["service"] = "payments"
    firing["groupKey"] = '{}:{alertname="RedisDown", service="payments"}'
    result = api.webhook("alertmanager", firing).json()
    assert result["stored"] == 2 and result["created_incidents"] == [] and result["unrouted"] == []
    assert incidents(api) == [] and all(a.incident_id is None for a in alerts(api))


def test_unknown_service_is_reported_then_routed_once_it_exists(api: Api) -> None:
    with api.rt.transaction() as session:
        session.add(
            AlertRule(
                name="ghost",
                position=-1,
                spec={
                    "name": "ghost",
                    "source": "custom",
                    "match": {"alertname": "Ghost"},
                    "service": "ghost-svc",
                    "auto_create": True,
                },
            )
        )
    before = api.counts()
    result = api.webhook("custom", {"name": "Ghost", "severity": "critical"}).json()
    assert result["stored"] == 1 and result["created_incidents"] == []
    assert result["unrouted"] == [
        {
            "alert": "Ghost",
            "fingerprint": alerts(api)[0].fingerprint,
            "reason": "unknown service 'ghost-svc'",
        }
    ]
    assert api.counts() == {**before, "alerts": before["alerts"] + 1}
    with api.rt.transaction() as session:
        team_id = session.scalar(select(Service.owner_team_id).where(Service.name == "redis-prod"))
        session.add(Service(name="ghost-svc", owner_team_id=team_id))
    routed = api.webhook("custom", {"name": "Ghost", "severity": "critical"}).json()
    assert len(routed["created_incidents"]) == 1 and routed["unrouted"] == []
    assert incidents(api)[0].severity == "SEV1_CRITICAL"


@pytest.mark.parametrize(
    "name,source,headers,stored,created",
    [
        ("grafana_unified.json", "grafana", {}, 2, 1),
        ("grafana_legacy.json", "grafana", {}, 1, 1),
        ("datadog.json", "datadog", {}, 1, 1),
        ("sentry_issue_alert.json", "sentry", {"Sentry-Hook-Resource": "event_alert"}, 1, 1),
        ("sentry_metric_alert.json", "sentry", {"Sentry-Hook-Resource": "metric_alert"}, 1, 1),
        ("custom.json", "custom", {}, 2, 1),
    ],
)
def test_each_tool_payload(
    api: Api, name: str, source: str, headers: dict[str, str], stored: int, created: int
) -> None:
    payload = load_alert(name)
    response = api.webhook(source, payload, **headers)
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["stored"] == stored and len(result["created_incidents"]) == created
    counts = api.counts()
    repeat = api.webhook(source, payload, **headers).json()
    assert repeat["created_incidents"] == [] and repeat["deduplicated"] == stored
    assert api.counts() == counts


def test_empty_payload_is_accepted(api: Api) -> None:
    response = api.webhook("alertmanager", {"alerts": []})
    assert response.status_code == 202 and response.json()["received"] == 0


def test_big_fingerprint_and_group_key_fit(api: Api) -> None:
    payload: dict[str, Any] = load_alert("alertmanager_firing.json")
    payload["groupKey"] = "g" * 2000
    payload["alerts"][0]["fingerprint"] = "f" * 400
    payload["alerts"][0]["labels"]["alertname"] = "n" * 900
    response = api.webhook("alertmanager", payload)
    assert response.status_code == 202, response.text
    assert len(response.json()["created_incidents"]) == 1
    assert api.webhook("alertmanager", payload).json()["deduplicated"] == 2
