"""Alert webhook parsers: every source on its documented payload, plus malformed input."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.errors import InputError
from handlers.webhooks.parsers import (
    MAX_ALERTS_PER_PAYLOAD,
    SOURCES,
    ParsedAlert,
    parse,
    parse_alertmanager,
    parse_custom,
    parse_datadog,
    parse_grafana,
    parse_sentry,
    verify_sentry_signature,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "alerts"
EVENT_ALERT = {"Sentry-Hook-Resource": "event_alert"}
METRIC_ALERT = {"Sentry-Hook-Resource": "metric_alert"}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def only(alerts: list[ParsedAlert]) -> ParsedAlert:
    assert len(alerts) == 1
    return alerts[0]


# ------------------------------------------------------------------------- Alertmanager


def test_alertmanager_firing_fixture() -> None:
    alerts = parse("alertmanager", load("alertmanager_firing.json"), {})
    assert len(alerts) == 2
    first, second = alerts
    assert first.source == "alertmanager"
    assert first.status == "firing"
    assert first.fingerprint == "6b1f2c3d4e5f6a7b"
    assert second.fingerprint == "9a8b7c6d5e4f3a2b"
    assert first.name == "RedisDown"
    assert first.summary == "Redis instance is down"
    assert first.description.startswith("redis-1.example.com:9121 has been unreachable")
    assert first.labels["instance"] == "redis-1.example.com:9121"
    assert first.annotations["runbook_url"] == "https://wiki.example.com/runbooks/redis"
    assert first.severity_label == "critical"
    assert first.service_hint == "redis-prod"
    assert first.group_key == '{}/{service="redis-prod"}:{alertname="RedisDown"}'
    assert second.group_key == first.group_key
    # nanosecond RFC 3339 with an offset -> aware UTC, truncated to microseconds
    assert first.starts_at == datetime(2024, 5, 2, 7, 52, 26, 739266, tzinfo=UTC)
    assert second.starts_at == datetime(2024, 5, 2, 7, 53, 11, 102000, tzinfo=UTC)
    assert first.ends_at is None  # Go zero time
    assert first.url is not None and first.url.startswith("http://prometheus.example.com:9090/")
    assert first.raw["fingerprint"] == "6b1f2c3d4e5f6a7b"
    assert "alerts" not in first.raw  # the alert's own object, not the envelope


def test_alertmanager_resolved_fixture_matches_firing() -> None:
    firing = parse_alertmanager(load("alertmanager_firing.json"))
    resolved = parse_alertmanager(load("alertmanager_resolved.json"))
    assert [a.status for a in resolved] == ["resolved", "resolved"]
    assert [a.fingerprint for a in resolved] == [a.fingerprint for a in firing]
    assert [a.group_key for a in resolved] == [a.group_key for a in firing]
    assert resolved[0].ends_at == datetime(2024, 5, 2, 8, 10, 26, 739266, tzinfo=UTC)
    assert resolved[1].ends_at == datetime(2024, 5, 2, 8, 11, 41, 500000, tzinfo=UTC)


def test_alertmanager_zero_time_and_provisional_ends_at_are_none() -> None:
    payload = load("alertmanager_firing.json")
    payload["alerts"][0]["endsAt"] = "2099-01-01T00:00:00Z"  # provisional end of a firing alert
    payload["alerts"][1]["startsAt"] = "0001-01-01T00:00:00Z"
    first, second = parse_alertmanager(payload)
    assert first.ends_at is None
    assert second.starts_at is None


def test_alertmanager_alert_status_falls_back_to_group_status() -> None:
    payload = load("alertmanager_resolved.json")
    for alert in payload["alerts"]:
        del alert["status"]
    assert {a.status for a in parse_alertmanager(payload)} == {"resolved"}


def test_alertmanager_tolerates_newer_and_missing_optional_keys() -> None:
    payload = {
        "version": "4",
        "status": "firing",
        "notification_reason": "new_alerts",
        "routeLabels": {"team": "sre"},
        "alerts": [{"labels": {"alertname": "Watchdog"}}],
    }
    alert = only(parse_alertmanager(payload))
    assert alert.name == "Watchdog"
    assert alert.summary == "Watchdog"
    assert alert.group_key is None
    assert alert.url is None
    assert alert.severity_label is None
    assert alert.service_hint is None
    assert len(alert.fingerprint) == 64  # no fingerprint sent: sha256 of the labels


def test_fingerprint_without_tool_fingerprint_is_stable_and_label_sensitive() -> None:
    def one(labels: dict[str, str]) -> str:
        body = {"status": "firing", "alerts": [{"labels": labels}]}
        return only(parse_alertmanager(body)).fingerprint

    base = {"alertname": "DiskFull", "instance": "db-1", "severity": "warning"}
    assert one(base) == one(dict(reversed(list(base.items()))))  # order-insensitive
    assert one(base) == one(copy.deepcopy(base))
    assert one(base) != one({**base, "instance": "db-2"})
    assert one(base) != one({**base, "extra": ""})


def test_service_hint_prefers_service_then_app_component_job() -> None:
    def hint(labels: dict[str, str]) -> str | None:
        body = {"status": "firing", "alerts": [{"labels": labels}]}
        return only(parse_alertmanager(body)).service_hint

    assert hint({"job": "node", "app": "api", "service": "checkout"}) == "checkout"
    assert hint({"job": "node", "app": "api"}) == "api"
    assert hint({"job": "node", "component": "db"}) == "db"
    assert hint({"job": "node"}) == "node"


# ------------------------------------------------------------------------------ Grafana


def test_grafana_unified_fixture() -> None:
    memory, cpu = parse("grafana", load("grafana_unified.json"), {})
    assert memory.source == cpu.source == "grafana"
    assert memory.name == "High memory usage"
    assert memory.fingerprint == "c6eadffa33fcdf37"
    assert memory.status == "firing"
    assert memory.summary == "This alert was triggered for zone us-1"
    assert memory.description == "The system has high memory usage"
    assert memory.group_key == "{}:{}"
    assert memory.severity_label == "warning"
    assert memory.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert memory.ends_at is None
    # empty panel/dashboard URLs fall back to the rule's URL
    assert memory.url == "https://grafana.example.com/alerting/1afz29v7z/edit"
    assert cpu.url == "https://grafana.example.com/d/abc123?viewPanel=2"
    assert memory.raw["values"] == {"B": 44.23943737541908, "C": 1}


def test_grafana_legacy_fixture() -> None:
    alert = only(parse("grafana", load("grafana_legacy.json"), {}))
    assert alert.source == "grafana"
    assert alert.status == "firing"
    assert alert.name == "Redis memory alert"
    assert alert.summary == "[Alerting] Redis memory alert"
    assert alert.description == "Redis memory above 95% for 5 minutes"
    assert alert.labels == {"service": "redis-prod", "severity": "high"}
    assert alert.severity_label == "high"
    assert alert.service_hint == "redis-prod"
    assert alert.group_key is None
    assert alert.url is not None and alert.url.startswith("https://grafana.example.com/d/")
    assert alert.annotations["state"] == "alerting"
    assert "redis_memory_used_percent=97.5" in alert.annotations["eval_matches"]


def test_grafana_legacy_ok_resolves_same_fingerprint() -> None:
    payload = load("grafana_legacy.json")
    firing = only(parse_grafana(payload))
    payload["state"] = "ok"
    payload["title"] = "[OK] Redis memory alert"
    payload["evalMatches"] = []
    resolved = only(parse_grafana(payload))
    assert resolved.status == "resolved"
    assert resolved.fingerprint == firing.fingerprint


def test_grafana_legacy_no_data_fires_and_paused_pending_give_nothing() -> None:
    payload = load("grafana_legacy.json")
    payload["state"] = "no_data"
    assert only(parse_grafana(payload)).status == "firing"
    for state in ("paused", "pending"):
        payload["state"] = state
        assert parse_grafana(payload) == []


def test_grafana_legacy_unknown_state_is_input_error() -> None:
    payload = load("grafana_legacy.json")
    payload["state"] = "exploded"
    with pytest.raises(InputError, match="state"):
        parse_grafana(payload)


def test_grafana_neither_shape_is_input_error() -> None:
    with pytest.raises(InputError, match="alerts"):
        parse_grafana({"receiver": "x", "status": "firing"})


# ------------------------------------------------------------------------------ Datadog


def test_datadog_fixture() -> None:
    alert = only(parse("datadog", load("datadog.json"), {}))
    assert alert.source == "datadog"
    assert alert.status == "firing"
    assert alert.fingerprint == "9bd4ac313a4d1e8fae2482df7b77628"  # AGGREG_KEY
    assert alert.name == "Redis latency high"  # [P2] [Triggered on {...}] stripped
    assert alert.summary == "Redis latency high"  # the incident title has no state prefix
    assert alert.annotations["title"] == "[P2] [Triggered on {host:redis-1}] Redis latency high"
    assert alert.description.startswith("@webhook-imas")
    assert "%%%" not in alert.description
    assert alert.labels["service"] == "redis-prod"
    assert alert.labels["env"] == "prod"
    assert alert.labels["monitor"] == ""
    assert alert.service_hint == "redis-prod"
    assert alert.severity_label == "P2"
    assert alert.url == "https://app.datadoghq.com/event/event?id=7485379890863845239"
    assert alert.starts_at == datetime(2024, 5, 2, 7, 56, 25, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.annotations["alert_transition"] == "Triggered"


def test_datadog_recovered_is_resolved_with_same_fingerprint() -> None:
    payload = load("datadog.json")
    firing = only(parse_datadog(payload))
    payload["ALERT_TRANSITION"] = "Recovered"
    payload["ALERT_TYPE"] = "success"
    payload["title"] = "[P2] [Recovered on {host:redis-1}] Redis latency high"
    resolved = only(parse_datadog(payload))
    assert resolved.status == "resolved"
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.name == firing.name
    assert resolved.ends_at == datetime(2024, 5, 2, 7, 56, 25, tzinfo=UTC)
    assert resolved.starts_at is None


def test_datadog_default_template_only() -> None:
    """The default payload: no $ALERT_* variables; status and identity come from the title."""
    base = {
        "body": "%%%\nTest notification\n%%%",
        "last_updated": "1591216985000",
        "event_type": "service_check",
        "title": "[Triggered] [TEST] Host Cluster Alert",
        "date": "1591216985000",
        "org": {"id": "415600", "name": "Example"},
        "id": "5485379890863845239",
    }
    firing = only(parse_datadog(base))
    resolved = only(parse_datadog({**base, "title": "[Recovered] [TEST] Host Cluster Alert"}))
    assert firing.status == "firing"
    assert resolved.status == "resolved"
    assert firing.name == "[TEST] Host Cluster Alert"
    assert firing.fingerprint == resolved.fingerprint
    assert firing.description == "Test notification"
    other = only(parse_datadog({**base, "title": "[Triggered] Another monitor"}))
    assert other.fingerprint != firing.fingerprint


def test_datadog_alert_id_fingerprint_depends_on_scope() -> None:
    payload = load("datadog.json")
    del payload["AGGREG_KEY"]
    host1 = only(parse_datadog(payload))
    payload["ALERT_SCOPE"] = "host:redis-2"
    host2 = only(parse_datadog(payload))
    assert host1.fingerprint != host2.fingerprint
    assert len(host1.fingerprint) == 64


def test_datadog_keys_are_case_insensitive_and_placeholders_ignored() -> None:
    payload = {
        "title": "Queue backlog",
        "alert_id": "42",
        "alert_transition": "Triggered",
        "tags": ["service:billing", "env:prod"],
        "alert_priority": "$ALERT_PRIORITY",  # unrendered variable
        "priority": "P1",
        "link": "$LINK",
    }
    alert = only(parse_datadog(payload))
    assert alert.service_hint == "billing"
    assert alert.severity_label == "P1"
    assert alert.url is None


def test_datadog_warn_transition_gives_warning_word() -> None:
    alert = only(parse_datadog({"title": "Disk", "ALERT_TRANSITION": "Warn"}))
    assert alert.status == "firing"
    assert alert.severity_label == "warning"


def test_datadog_missing_title_is_input_error() -> None:
    with pytest.raises(InputError, match="title") as info:
        parse_datadog({"body": "x", "id": "1"})
    assert info.value.field == "title"


# ------------------------------------------------------------------------------- Sentry


def test_sentry_issue_alert_fixture() -> None:
    alert = only(parse("sentry", load("sentry_issue_alert.json"), EVENT_ALERT))
    assert alert.source == "sentry"
    assert alert.status == "firing"
    assert alert.name == "Checkout errors (page on-call)"
    assert alert.summary == "TypeError: cart is undefined"
    assert alert.description == "checkout.submitOrder(app/checkout)"
    assert alert.fingerprint == "issue:1117540176"
    assert alert.severity_label == "fatal"
    assert alert.service_hint == "shop-frontend"  # project slug from the event's API URL
    assert alert.labels["environment"] == "production"
    assert alert.labels["project"] == "shop-frontend"
    assert alert.starts_at == datetime(2024, 5, 2, 8, 6, 17, 677000, tzinfo=UTC)
    assert alert.url is not None and alert.url.startswith("https://sentry.io/organizations/")
    assert alert.raw["action"] == "triggered"


def test_sentry_headers_are_case_insensitive_and_optional() -> None:
    payload = load("sentry_issue_alert.json")
    lower = only(parse_sentry(payload, {"sentry-hook-resource": "event_alert"}))
    inferred = only(parse_sentry(payload, {}))
    assert lower.fingerprint == inferred.fingerprint == "issue:1117540176"


def test_sentry_metric_alert_fixture_and_resolution() -> None:
    payload = load("sentry_metric_alert.json")
    critical = only(parse("sentry", payload, METRIC_ALERT))
    assert critical.status == "firing"
    assert critical.name == "Too many errors"
    assert critical.summary == "Critical: Too many errors"
    assert critical.description.startswith("1000 events in the last 10 minutes")
    assert critical.severity_label == "critical"
    assert critical.fingerprint == "metric_alert:4"
    assert critical.service_hint == "shop-backend"
    assert critical.labels == {"project": "shop-backend", "environment": "production"}
    assert critical.starts_at == datetime(2024, 5, 2, 7, 50, 40, tzinfo=UTC)
    assert critical.ends_at is None
    assert critical.url == "https://sentry.io/organizations/example-org/alerts/1/"

    payload["action"] = "warning"
    assert only(parse_sentry(payload, METRIC_ALERT)).severity_label == "warning"

    payload["action"] = "resolved"
    payload["data"]["description_title"] = "Resolved: Too many errors"
    payload["data"]["metric_alert"]["date_closed"] = "2024-05-02T08:30:00.000000Z"
    resolved = only(parse_sentry(payload, METRIC_ALERT))
    assert resolved.status == "resolved"
    assert resolved.fingerprint == critical.fingerprint
    assert resolved.ends_at == datetime(2024, 5, 2, 8, 30, tzinfo=UTC)


def test_sentry_metric_alert_bad_action_is_input_error() -> None:
    payload = load("sentry_metric_alert.json")
    payload["action"] = "exploded"
    with pytest.raises(InputError, match="action"):
        parse_sentry(payload, METRIC_ALERT)


def _issue_payload(action: str, status: str = "unresolved") -> dict[str, Any]:
    """Shape of sentry-docs webhooks/issues.mdx."""
    return {
        "action": action,
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {
            "issue": {
                "culprit": "?(runner)",
                "firstSeen": "2024-05-02T08:58:37.391000Z",
                "id": "1170820242",
                "level": "error",
                "project": {"id": "1", "name": "front-end", "slug": "front-end"},
                "shortId": "FRONT-END-9",
                "status": status,
                "title": "ReferenceError: blooopy is not defined",
                "web_url": "https://sentry.io/organizations/example-org/issues/1170820242/",
            }
        },
        "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},
    }


def test_sentry_issue_resource_created_and_resolved() -> None:
    headers = {"Sentry-Hook-Resource": "issue"}
    created = only(parse_sentry(_issue_payload("created"), headers))
    assert created.status == "firing"
    assert created.fingerprint == "issue:1170820242"
    assert created.summary == "FRONT-END-9: ReferenceError: blooopy is not defined"
    assert created.service_hint == "front-end"
    assert created.severity_label == "error"
    resolved = only(parse_sentry(_issue_payload("resolved", "resolved"), headers))
    assert resolved.status == "resolved"
    assert resolved.fingerprint == created.fingerprint
    assert parse_sentry(_issue_payload("assigned"), headers) == []
    assert parse_sentry(_issue_payload("archived", "ignored"), headers) == []


def test_sentry_non_alert_resources_give_nothing_unknown_is_error() -> None:
    body = {"action": "created", "data": {"installation": {}}}
    assert parse_sentry(body, {"Sentry-Hook-Resource": "installation"}) == []
    with pytest.raises(InputError, match="Sentry-Hook-Resource"):
        parse_sentry(body, {"Sentry-Hook-Resource": "bogus"})
    with pytest.raises(InputError, match="Sentry-Hook-Resource"):
        parse_sentry({"hello": "world"}, {})


def test_sentry_legacy_plugin_format() -> None:
    """Shape of alerta/alerta-contrib webhooks/sentry/README.md (Sentry 8/9 webhook plugin)."""
    payload = {
        "project": "alerta5",
        "project_name": "alerta5",
        "culprit": "raven.scripts.runner in main",
        "project_slug": "alerta5",
        "url": "https://sentry.io/alertaio/alerta5/issues/541485531/",
        "logger": None,
        "level": "error",
        "message": "This is an example Python exception",
        "id": "541485531",
        "event": {
            "received": 1525248430,
            "event_id": "0476467adf8f499ea795a48fcc4bf290",
            "tags": [["level", "error"], ["os", "Windows 8"]],
            "metadata": {"title": "This is an example Python exception"},
        },
    }
    alert = only(parse("sentry", payload, {}))
    assert alert.fingerprint == "issue:541485531"
    assert alert.name == "This is an example Python exception"
    assert alert.severity_label == "error"
    assert alert.service_hint == "alerta5"
    assert alert.url == "https://sentry.io/alertaio/alerta5/issues/541485531/"
    assert alert.starts_at == datetime(2018, 5, 2, 8, 7, 10, tzinfo=UTC)
    assert alert.labels["os"] == "Windows 8"


def test_sentry_signature_valid_and_invalid() -> None:
    body = (DATA / "sentry_issue_alert.json").read_bytes()
    secret = "a" * 64
    good = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert verify_sentry_signature(body, good, secret)
    assert verify_sentry_signature(body, good.upper(), secret)
    assert not verify_sentry_signature(body + b" ", good, secret)
    assert not verify_sentry_signature(body, good, "other-secret")
    assert not verify_sentry_signature(body, good[:-1], secret)
    assert not verify_sentry_signature(body, None, secret)
    assert not verify_sentry_signature(body, "", secret)
    assert not verify_sentry_signature(body, good, "")
    assert not verify_sentry_signature(body, "sïgnature\ud800", secret)  # never raises


# ------------------------------------------------------------------------------- custom


def test_custom_fixture() -> None:
    disk, backup = parse("custom", load("custom.json"), {})
    assert disk.source == "custom"
    assert disk.name == "Disk almost full"
    assert disk.status == "firing"
    assert disk.severity_label == "warning"
    assert disk.service_hint == "postgres-main"
    assert disk.summary == "/var/lib/postgresql is 92% full on db-1"
    assert disk.labels == {"host": "db-1", "env": "prod"}
    assert disk.starts_at == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    assert disk.url == "https://monitoring.example.com/hosts/db-1"
    assert len(disk.fingerprint) == 64
    assert backup.status == "resolved"
    assert backup.fingerprint == "backup-db-1"
    assert backup.ends_at == datetime(2024, 5, 2, 3, 15, tzinfo=UTC)


def test_custom_single_object_and_defaults() -> None:
    alert = only(parse_custom({"name": "Smoke test"}))
    assert alert.status == "firing"
    assert alert.summary == "Smoke test"
    assert alert.description == ""
    assert alert.severity_label is None
    again = only(parse_custom({"name": "Smoke test", "status": "resolved"}))
    assert again.fingerprint == alert.fingerprint
    other = only(parse_custom({"name": "Smoke test", "service": "api"}))
    assert other.fingerprint != alert.fingerprint


def test_custom_missing_name_names_the_field() -> None:
    with pytest.raises(InputError) as info:
        parse_custom({"alerts": [{"name": "ok"}, {"status": "firing"}]})
    assert info.value.field == "alerts[1].name"
    assert "alerts[1].name" in str(info.value)


# ----------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("source", "payload", "field"),
    [
        ("alertmanager", [], "payload"),
        ("alertmanager", "hello", "payload"),
        ("alertmanager", None, "payload"),
        ("alertmanager", {"status": "firing"}, "alerts"),
        ("alertmanager", {"alerts": {"a": 1}}, "alerts"),
        ("alertmanager", {"alerts": [1]}, "alerts[0]"),
        ("alertmanager", {"alerts": [{"labels": {}}]}, "alerts[0].status"),
        ("alertmanager", {"status": "burning", "alerts": []}, "status"),
        ("alertmanager", {"alerts": [{"status": "firing", "labels": ["a"]}]}, "alerts[0].labels"),
        (
            "alertmanager",
            {"alerts": [{"status": "firing", "labels": {"a": {"b": 1}}}]},
            "alerts[0].labels.a",
        ),
        (
            "alertmanager",
            {"alerts": [{"status": "firing", "startsAt": "yesterday"}]},
            "alerts[0].startsAt",
        ),
        ("alertmanager", {"alerts": [{"status": "firing", "endsAt": 1e400}]}, "alerts[0].endsAt"),
        ("alertmanager", {"groupKey": ["x"], "alerts": []}, "groupKey"),
        ("grafana", {"alerts": "x"}, "alerts"),
        ("grafana", {"ruleName": "r"}, "state"),
        ("grafana", {"ruleName": "r", "state": "alerting", "evalMatches": {}}, "evalMatches"),
        ("datadog", {"title": "t", "TAGS": 5}, "tags"),
        ("datadog", {"title": "t", "date": "not a date"}, "date"),
        ("datadog", {"title": "t", "org": "acme"}, "org"),
        ("sentry", {"action": "critical", "data": {}}, "Sentry-Hook-Resource"),
        ("custom", {"alerts": [{"name": "x", "status": "up"}]}, "alerts[0].status"),
        ("custom", {"name": "x", "starts_at": True}, "payload.starts_at"),
        ("custom", {"name": ""}, "payload.name"),
    ],
)
def test_malformed_payloads_raise_input_error_naming_the_field(
    source: str, payload: Any, field: str
) -> None:
    with pytest.raises(InputError) as info:
        parse(source, payload, {})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


def test_huge_numbers_are_input_errors_not_crashes() -> None:
    huge = 10**5000  # json.loads accepts up to 4300 digits; callers may pass anything
    for payload, field in [
        ({"status": "firing", "alerts": [{"startsAt": 10**400}]}, "alerts[0].startsAt"),
        ({"status": huge, "alerts": []}, "status"),
        ({"status": "firing", "alerts": [{"fingerprint": huge}]}, "alerts[0].fingerprint"),
    ]:
        with pytest.raises(InputError) as info:
            parse("alertmanager", payload, {})
        assert info.value.field == field


def test_sentry_malformed_event_alert() -> None:
    with pytest.raises(InputError) as info:
        parse_sentry({"data": {"event": "x"}}, EVENT_ALERT)
    assert info.value.field == "data.event"
    with pytest.raises(InputError) as info:
        parse_sentry({"data": {"event": {"tags": [["a"]]}}}, EVENT_ALERT)
    assert info.value.field == "data.event.tags[0]"


def test_unknown_source_is_input_error() -> None:
    with pytest.raises(InputError) as info:
        parse("nagios", {}, {})
    assert info.value.field == "source"
    assert "alertmanager" in str(info.value)


@pytest.mark.parametrize("source", ["alertmanager", "custom"])
def test_too_many_alerts_is_input_error(source: str) -> None:
    alert = {"status": "firing", "name": "x", "labels": {"alertname": "x"}}
    payload = {"status": "firing", "alerts": [alert] * (MAX_ALERTS_PER_PAYLOAD + 1)}
    with pytest.raises(InputError, match="at most 1000") as info:
        parse(source, payload, {})
    assert info.value.field == "alerts"
    payload["alerts"] = payload["alerts"][:MAX_ALERTS_PER_PAYLOAD]
    assert len(parse(source, payload, {})) == MAX_ALERTS_PER_PAYLOAD


# ------------------------------------------------------------------------------- fuzzing

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "alerts", "status", "labels", "annotations", "startsAt", "endsAt", "fingerprint",
        "groupKey", "generatorURL", "panelURL", "ruleName", "ruleId", "state", "evalMatches",
        "tags", "title", "TAGS", "ALERT_ID", "ALERT_TRANSITION", "AGGREG_KEY", "date", "org",
        "data", "event", "metric_alert", "issue", "action", "triggered_rule", "project",
        "level", "id", "name", "severity", "service", "starts_at", "ends_at", "culprit",
        "alert_rule", "projects", "date_started", "date_closed", "received", "metadata",
    ]
)  # fmt: skip
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "firing", "resolved", "alerting", "ok", "no_data", "critical", "warning",
            "0001-01-01T00:00:00Z", "2024-05-02T08:00:00+02:00", "1714636585000",
            "[Recovered] x", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+01:00",
        ]
    )
)  # fmt: skip
SHAPED = st.recursive(
    SCALAR,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=30,
)
HEADERS = st.dictionaries(
    st.sampled_from(["Sentry-Hook-Resource", "sentry-hook-resource", "X-Other"]),
    st.sampled_from(["event_alert", "metric_alert", "issue", "error", "installation", "?"])
    | st.text(max_size=8),
    max_size=2,
)


def _parse_or_input_error(source: str, payload: Any, headers: dict[str, str]) -> None:
    try:
        result = parse(source, payload, headers)
    except InputError as exc:
        assert exc.field, "every InputError names its field"
        return
    assert isinstance(result, list)
    for alert in result:
        assert isinstance(alert, ParsedAlert)
        assert alert.status in ("firing", "resolved")
        assert alert.fingerprint and alert.name
        for moment in (alert.starts_at, alert.ends_at):
            assert moment is None or moment.utcoffset() is not None


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(source=st.sampled_from(SOURCES), payload=JSON, headers=HEADERS)
def test_fuzz_arbitrary_json_gives_list_or_input_error(
    source: str, payload: Any, headers: dict[str, str]
) -> None:
    _parse_or_input_error(source, payload, headers)


@FUZZ
@given(source=st.sampled_from(SOURCES), payload=SHAPED, headers=HEADERS)
def test_fuzz_shaped_json_gives_list_or_input_error(
    source: str, payload: Any, headers: dict[str, str]
) -> None:
    _parse_or_input_error(source, payload, headers)


@FUZZ
@given(
    name=st.sampled_from(
        [
            "alertmanager_firing.json",
            "grafana_unified.json",
            "grafana_legacy.json",
            "datadog.json",
            "sentry_issue_alert.json",
            "sentry_metric_alert.json",
            "custom.json",
        ]
    ),
    path_seed=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=5),
    value=SHAPED,
)
def test_fuzz_mutated_fixtures_give_list_or_input_error(
    name: str, path_seed: list[int], value: Any
) -> None:
    """Replace one nested value of a real payload with garbage."""
    payload = load(name)
    node: Any = payload
    for seed in path_seed[:-1]:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        children = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
        if not children:
            break
        node = children[seed % len(children)][1]
    keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
    if keys:
        node[keys[path_seed[-1] % len(keys)]] = value
    source = name.split("_")[0].removesuffix(".json")
    headers = {"sentry_issue_alert.json": EVENT_ALERT, "sentry_metric_alert.json": METRIC_ALERT}
    _parse_or_input_error(source, payload, headers.get(name, {}))
