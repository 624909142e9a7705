"""An alert firing again after its incident was resolved follows its rule's ``on_refire``
policy, visible in the timeline, through the real webhook route (issue 16 item 12)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from storage.models import Alert, AlertRule, Incident, TimelineEvent, utcnow
from tests.api_helpers import Api

DISK = {"name": "Disk almost full", "fingerprint": "disk-db1", "severity": "warning"}


def incidents(api: Api) -> list[Incident]:
    with api.rt.transaction() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def alerts(api: Api) -> list[Alert]:
    with api.rt.transaction() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def timeline(api: Api, incident_id: int) -> list[tuple[str, str]]:
    with api.rt.transaction() as session:
        rows = session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id)
            .order_by(TimelineEvent.id)
        )
        return [(e.type, e.message) for e in rows]


def use_rule(api: Api, **policy: Any) -> None:
    """A rule for the Disk alerts, ahead of the default ones."""
    spec = {
        "name": "disk",
        "source": "custom",
        "match": {"alertname": "Disk.*"},
        "service": "postgres-main",
        "auto_create": True,
        "auto_resolve": True,
        **policy,
    }
    with api.rt.transaction() as session:
        session.add(AlertRule(name="disk", position=-1, spec=spec))


class Clock:
    def __init__(self, api: Api) -> None:
        self.now = utcnow()
        api.rt.clock = lambda: self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def fire_then_resolve(api: Api, clock: Clock) -> Incident:
    created = api.webhook("custom", DISK).json()["created_incidents"]
    clock.advance(1)
    resolved = api.webhook("custom", {**DISK, "status": "resolved"}).json()
    assert resolved["resolved_incidents"] == created
    [incident] = incidents(api)
    assert incident.status == "RESOLVED"
    return incident


def test_default_reopens_within_15_minutes_of_the_resolution(api: Api) -> None:
    use_rule(api)
    clock = Clock(api)
    incident = fire_then_resolve(api, clock)
    clock.advance(2)  # inside the suppression window too: it used to be folded away
    result = api.webhook("custom", DISK).json()
    assert result["reopened_incidents"] == [incident.short_id]
    assert result["created_incidents"] == [] and result["incidents"] == [incident.short_id]
    [again] = incidents(api)
    assert again.status == "TRIGGERED"
    [alert] = alerts(api)
    assert (alert.status, alert.incident_id, alert.count) == ("firing", incident.id, 3)
    refired = [m for t, m in timeline(api, incident.id) if t == "ALERT_REFIRED"]
    assert refired == [
        "Alert fired again: Disk almost full; incident reopened (on_refire: new_incident, "
        "resolved less than 15 min ago)"
    ]
    types = [t for t, _ in timeline(api, incident.id)]
    assert types.index("ALERT_REFIRED") < len(types) - 1 and types[-1] == "ALERT_RECEIVED"


def test_default_opens_a_new_incident_later(api: Api) -> None:
    use_rule(api)
    clock = Clock(api)
    old = fire_then_resolve(api, clock)
    clock.advance(20)
    result = api.webhook("custom", DISK).json()
    assert len(result["created_incidents"]) == 1 and result["reopened_incidents"] == []
    new_id = result["created_incidents"][0]
    assert [(i.short_id, i.status) for i in incidents(api)] == [
        (old.short_id, "RESOLVED"),
        (new_id, "TRIGGERED"),
    ]
    assert [a.status for a in alerts(api)] == ["resolved", "firing"]
    assert (
        "ALERT_REFIRED",
        f"Alert fired again: Disk almost full; it joined {new_id} (on_refire: new_incident)",
    ) in timeline(api, old.id)


def test_new_incident_inside_the_suppression_window(api: Api) -> None:
    use_rule(api, on_refire="new_incident", reopen_within_minutes=0, suppression_window_minutes=30)
    clock = Clock(api)
    old = fire_then_resolve(api, clock)
    clock.advance(2)
    result = api.webhook("custom", DISK).json()
    assert len(result["created_incidents"]) == 1
    assert [i.status for i in incidents(api)] == ["RESOLVED", "TRIGGERED"]
    assert [a.status for a in alerts(api)] == ["resolved", "firing"]  # a new occurrence
    assert [a.incident_id for a in alerts(api)] == [old.id, incidents(api)[1].id]


def test_reopen_reopens_even_hours_later(api: Api) -> None:
    use_rule(api, on_refire="reopen")
    clock = Clock(api)
    incident = fire_then_resolve(api, clock)
    clock.advance(180)
    result = api.webhook("custom", DISK).json()
    assert result["reopened_incidents"] == [incident.short_id]
    assert [i.status for i in incidents(api)] == ["TRIGGERED"]
    assert (
        "ALERT_REFIRED",
        "Alert fired again: Disk almost full; incident reopened (on_refire: reopen)",
    ) in timeline(api, incident.id)


def test_ignore_only_notes_the_refire(api: Api) -> None:
    use_rule(api, on_refire="ignore")
    clock = Clock(api)
    incident = fire_then_resolve(api, clock)
    clock.advance(2)
    before = len(timeline(api, incident.id))
    result = api.webhook("custom", DISK).json()
    assert result["created_incidents"] == [] and result["reopened_incidents"] == []
    assert [i.status for i in incidents(api)] == ["RESOLVED"]
    assert alerts(api)[-1].status == "firing"
    after = timeline(api, incident.id)
    assert after[before:] == [
        (
            "ALERT_REFIRED",
            "Alert fired again after resolution: Disk almost full (ignored: on_refire: ignore)",
        )
    ]


@pytest.mark.parametrize(
    "policy,message",
    [
        ({"on_refire": "sometimes"}, "on_refire: must be one of new_incident, reopen, ignore"),
        ({"reopen_within_minutes": "soon"}, "reopen_within_minutes: must be an integer"),
    ],
)
def test_bad_policies_are_refused_by_config_validate(policy: dict[str, Any], message: str):
    from bot import config_file
    from bot.domain.errors import ConfigError

    rule = ", ".join(f"{k}: {v}" for k, v in policy.items())
    text = (
        "teams: [{name: SRE}]\nservices: [{name: db, owner_team: SRE}]\n"
        f"alert_rules:\n  - {{name: disk, service: db, {rule}}}\n"
    )
    with pytest.raises(ConfigError) as err:
        config_file.parse(text, {}, name="imas.yml")
    assert message in str(err.value)


def test_datadog_state_prefixes_do_not_reach_the_incident_title(api: Api) -> None:
    body = {
        "title": "[P2] [Triggered on {host:redis-1}] Redis latency high",
        "alert_id": "1234",
        "alert_transition": "Triggered",
        "tags": "service:redis-prod",
    }
    created = api.webhook("datadog", body).json()["created_incidents"]
    assert len(created) == 1
    recovered = {
        **body,
        "title": "[P2] [Recovered on {host:redis-1}] Redis latency high",
        "alert_transition": "Recovered",
    }
    assert api.webhook("datadog", recovered).json()["resolved_incidents"] == created
    [incident] = incidents(api)
    assert incident.title == "Redis latency high"
    assert all("Triggered" not in m for _, m in timeline(api, incident.id))
