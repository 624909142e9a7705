"""Alert rules: matching, severity and service resolution, incident grouping keys."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.alert_rules import (
    DEFAULT_SEVERITY_MAP,
    AlertRuleSpec,
    default_severity,
    incident_key,
    match_rule,
    resolve_service,
    resolve_severity,
)
from bot.domain.errors import InputError
from handlers.webhooks.parsers import ParsedAlert, parse

DATA = Path(__file__).resolve().parents[2] / "data" / "alerts"

# The example rule of SPEC.md §2 ("Configuration file"), as YAML would load it.
SPEC_RULE: dict[str, Any] = {
    "name": "redis-prod from Alertmanager",
    "source": "alertmanager",
    "match": {"alertname": "Redis.*", "labels": {"service": "redis-prod"}},
    "service": "redis-prod",
    "severity_mapping": {"severity": {"critical": "SEV1_CRITICAL", "warning": "SEV3_MEDIUM"}},
    "auto_create": True,
    "auto_resolve": True,
    "suppression_window_minutes": 5,
}


def load(source: str, name: str, headers: dict[str, str] | None = None) -> list[ParsedAlert]:
    return parse(source, json.loads((DATA / name).read_text(encoding="utf-8")), headers or {})


def alert(**changes: Any) -> ParsedAlert:
    base = ParsedAlert(
        source="alertmanager",
        fingerprint="fp1",
        status="firing",
        name="RedisDown",
        summary="Redis down",
        description="",
        labels={"alertname": "RedisDown", "service": "redis-prod", "severity": "critical"},
        annotations={},
        severity_label="critical",
        service_hint="redis-prod",
        group_key=None,
        starts_at=None,
        ends_at=None,
        url=None,
        raw={},
    )
    return replace(base, **changes)


# ----------------------------------------------------------------------- default severity


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("critical", "SEV1_CRITICAL"),
        ("FATAL", "SEV1_CRITICAL"),
        ("P1", "SEV1_CRITICAL"),
        ("page", "SEV1_CRITICAL"),
        ("sev1", "SEV1_CRITICAL"),
        ("disaster", "SEV1_CRITICAL"),
        ("high", "SEV2_HIGH"),
        ("Error", "SEV2_HIGH"),
        ("p2", "SEV2_HIGH"),
        ("major", "SEV2_HIGH"),
        ("SEV2", "SEV2_HIGH"),
        ("warning", "SEV3_MEDIUM"),
        ("warn", "SEV3_MEDIUM"),
        (" medium ", "SEV3_MEDIUM"),
        ("P3", "SEV3_MEDIUM"),
        ("minor", "SEV3_MEDIUM"),
        ("sev3", "SEV3_MEDIUM"),
        ("info", "SEV4_LOW"),
        ("P5", "SEV4_LOW"),
        ("", "SEV4_LOW"),
        (None, "SEV4_LOW"),
    ],
)
def test_default_severity(word: str | None, expected: str) -> None:
    assert default_severity(word) == expected


def test_default_map_values_are_known_severities() -> None:
    assert set(DEFAULT_SEVERITY_MAP.values()) <= {"SEV1_CRITICAL", "SEV2_HIGH", "SEV3_MEDIUM"}
    assert all(key == key.lower() for key in DEFAULT_SEVERITY_MAP)


# --------------------------------------------------------------------------- from_config


def test_from_config_spec_example() -> None:
    rule = AlertRuleSpec.from_config(SPEC_RULE)
    assert rule.name == "redis-prod from Alertmanager"
    assert rule.source == "alertmanager"
    assert rule.name_regex == "Redis.*"
    assert rule.label_matchers == {"service": "redis-prod"}
    assert rule.service == "redis-prod"
    assert rule.severity_mapping == {
        "severity": {"critical": "SEV1_CRITICAL", "warning": "SEV3_MEDIUM"}
    }
    assert rule.auto_create is True
    assert rule.auto_resolve is True
    assert rule.suppression_window_minutes == 5


def test_from_config_defaults() -> None:
    rule = AlertRuleSpec.from_config({"name": "catch-all"})
    assert rule.source == "any"
    assert rule.name_regex is None
    assert rule.label_matchers == {}
    assert rule.service is None
    assert rule.severity_mapping == {}
    assert rule.auto_create is False
    assert rule.auto_resolve is False
    assert rule.suppression_window_minutes == 5


def test_from_config_normalises_case_and_yaml_scalars() -> None:
    rule = AlertRuleSpec.from_config(
        {
            "name": "x",
            "source": "Grafana",
            "match": {"labels": {"code": 500}},
            "severity_mapping": {"priority": {"P1": "sev1_critical"}},
        }
    )
    assert rule.source == "grafana"
    assert rule.label_matchers == {"code": "500"}
    assert rule.severity_mapping == {"priority": {"p1": "SEV1_CRITICAL"}}


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"match": {"alertname": "Redis(("}}, "match.alertname"),
        ({"match": {"alertname": 5}}, "match.alertname"),
        ({"match": {"alert_name": "x"}}, "match.alert_name"),
        ({"match": {"labels": ["a"]}}, "match.labels"),
        ({"match": {"labels": {"a": {"b": 1}}}}, "match.labels.a"),
        ({"severity_mapping": {"severity": {"critical": "SEV0"}}}, "severity_mapping.severity"),
        ({"severity_mapping": {"severity": "critical"}}, "severity_mapping.severity"),
        ({"source": "nagios"}, "source"),
        ({"auto_create": "yes"}, "auto_create"),
        ({"auto_resolve": 1}, "auto_resolve"),
        ({"suppression_window_minutes": "5"}, "suppression_window_minutes"),
        ({"suppression_window_minutes": -1}, "suppression_window_minutes"),
        ({"suppression_window_minutes": True}, "suppression_window_minutes"),
        ({"service": ""}, "service"),
        ({"auto_creat": True}, "auto_creat"),
    ],
)
def test_from_config_errors_name_rule_and_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(InputError) as info:
        AlertRuleSpec.from_config({**SPEC_RULE, **changes})
    message = str(info.value)
    assert "'redis-prod from Alertmanager'" in message
    assert key in message


def test_from_config_requires_a_name() -> None:
    with pytest.raises(InputError, match="name"):
        AlertRuleSpec.from_config({"source": "any"})
    with pytest.raises(InputError, match="name"):
        AlertRuleSpec.from_config({"name": "  "})


def test_unknown_severity_message_lists_allowed_values() -> None:
    with pytest.raises(InputError, match="SEV1_CRITICAL, SEV2_HIGH"):
        AlertRuleSpec.from_config(
            {"name": "r", "severity_mapping": {"severity": {"critical": "URGENT"}}}
        )


def test_direct_construction_validates_too() -> None:
    with pytest.raises(InputError, match="match.alertname"):
        AlertRuleSpec(name="r", name_regex="[")
    with pytest.raises(InputError, match="(?i)unknown severity"):
        AlertRuleSpec(name="r", severity_mapping={"severity": {"x": "BAD"}})


# ------------------------------------------------------------------------------ matching


def test_match_regex_is_full_match_and_case_sensitive() -> None:
    rule = AlertRuleSpec.from_config({"name": "r", "match": {"alertname": "Redis.*"}})
    assert rule.matches(alert(name="RedisDown"))
    assert not rule.matches(alert(name="redisdown"))  # case-sensitive, as Prometheus
    assert not rule.matches(alert(name="NotRedisDown"))  # anchored at the start
    suffix = AlertRuleSpec.from_config({"name": "r", "match": {"alertname": "Redis"}})
    assert not suffix.matches(alert(name="RedisDown"))  # anchored at the end


def test_match_labels_exact_and_source() -> None:
    rule = AlertRuleSpec.from_config(SPEC_RULE)
    assert rule.matches(alert())
    assert not rule.matches(alert(labels={"service": "redis-staging"}))
    assert not rule.matches(alert(labels={}))
    assert not rule.matches(alert(source="grafana"))
    anywhere = AlertRuleSpec.from_config({**SPEC_RULE, "source": "any"})
    assert anywhere.matches(alert(source="grafana"))


def test_match_rule_first_match_wins_in_order() -> None:
    specific = AlertRuleSpec.from_config(SPEC_RULE)
    catch_all = AlertRuleSpec.from_config({"name": "everything"})
    grafana_only = AlertRuleSpec.from_config({"name": "grafana", "source": "grafana"})
    assert match_rule([specific, catch_all], alert()) is specific
    assert match_rule([catch_all, specific], alert()) is catch_all
    assert match_rule([grafana_only, specific], alert(name="CpuHigh")) is None
    assert match_rule([], alert()) is None


def test_rules_on_fixture_alerts() -> None:
    rules = [
        AlertRuleSpec.from_config(SPEC_RULE),
        AlertRuleSpec.from_config(
            {
                "name": "grafana memory",
                "source": "grafana",
                "match": {"alertname": "High (memory|CPU) usage", "labels": {"team": "blue"}},
                "service": "platform",
            }
        ),
        AlertRuleSpec.from_config(
            {"name": "sentry checkout", "source": "sentry", "match": {"alertname": "Checkout.*"}}
        ),
    ]
    for redis_alert in load("alertmanager", "alertmanager_firing.json"):
        rule = match_rule(rules, redis_alert)
        assert rule is rules[0]
        assert resolve_severity(rule, redis_alert) == "SEV1_CRITICAL"
        assert resolve_service(rule, redis_alert) == "redis-prod"

    memory, cpu = load("grafana", "grafana_unified.json")
    assert match_rule(rules, memory) is rules[1]
    assert match_rule(rules, cpu) is rules[1]
    assert resolve_service(rules[1], cpu) == "platform"
    assert resolve_severity(rules[1], memory) == "SEV3_MEDIUM"  # default map on "warning"
    assert resolve_severity(rules[1], cpu) == "SEV4_LOW"  # no severity label at all

    (sentry,) = load("sentry", "sentry_issue_alert.json", {"Sentry-Hook-Resource": "event_alert"})
    assert match_rule(rules, sentry) is rules[2]
    assert resolve_severity(rules[2], sentry) == "SEV1_CRITICAL"  # level "fatal"
    assert resolve_service(rules[2], sentry) == "shop-frontend"  # rule has no service

    (datadog,) = load("datadog", "datadog.json")
    assert match_rule(rules, datadog) is None
    assert resolve_severity(None, datadog) == "SEV2_HIGH"  # "P2"
    assert resolve_service(None, datadog) == "redis-prod"


# ----------------------------------------------------------------------------- severity


def test_severity_rule_mapping_first_then_default() -> None:
    rule = AlertRuleSpec.from_config(
        {"name": "r", "severity_mapping": {"severity": {"critical": "SEV2_HIGH"}}}
    )
    # the rule demotes "critical" to SEV2
    assert resolve_severity(rule, alert()) == "SEV2_HIGH"
    # value not in the mapping -> default words on the raw severity
    warning = alert(labels={"severity": "warning"}, severity_label="warning")
    assert resolve_severity(rule, warning) == "SEV3_MEDIUM"
    # no rule -> default words
    assert resolve_severity(None, alert()) == "SEV1_CRITICAL"


def test_severity_mapping_value_case_insensitive_and_label_order() -> None:
    rule = AlertRuleSpec.from_config(
        {
            "name": "r",
            "severity_mapping": {
                "priority": {"p1": "SEV1_CRITICAL"},
                "severity": {"CRITICAL": "SEV3_MEDIUM"},
            },
        }
    )
    both = alert(labels={"priority": "P1", "severity": "critical"})
    assert resolve_severity(rule, both) == "SEV1_CRITICAL"  # first label in mapping order
    only_severity = alert(labels={"severity": "Critical"})
    assert resolve_severity(rule, only_severity) == "SEV3_MEDIUM"


def test_severity_mapping_on_severity_falls_back_to_raw_word() -> None:
    """One mapping covers sources whose severity is not a label (Sentry level, Datadog P2)."""
    rule = AlertRuleSpec.from_config(
        {"name": "r", "severity_mapping": {"severity": {"fatal": "SEV2_HIGH"}}}
    )
    sentry = alert(source="sentry", labels={"level": "fatal"}, severity_label="fatal")
    assert resolve_severity(rule, sentry) == "SEV2_HIGH"
    other = AlertRuleSpec.from_config(
        {"name": "r", "severity_mapping": {"team": {"fatal": "SEV2_HIGH"}}}
    )
    assert resolve_severity(other, sentry) == "SEV1_CRITICAL"  # no fallback for other labels


# ------------------------------------------------------------------------------ service


def test_resolve_service_rule_first_then_hint() -> None:
    with_service = AlertRuleSpec.from_config({"name": "r", "service": "cache"})
    without = AlertRuleSpec.from_config({"name": "r"})
    assert resolve_service(with_service, alert()) == "cache"
    assert resolve_service(without, alert()) == "redis-prod"
    assert resolve_service(None, alert(service_hint=None)) is None


# ------------------------------------------------------------------------- incident key


def test_incident_key_groups_alertmanager_group_into_one_incident() -> None:
    firing = load("alertmanager", "alertmanager_firing.json")
    resolved = load("alertmanager", "alertmanager_resolved.json")
    keys = {incident_key(a) for a in firing + resolved}
    assert keys == {'alertmanager:group:{}/{service="redis-prod"}:{alertname="RedisDown"}'}


def test_incident_key_falls_back_to_fingerprint() -> None:
    assert incident_key(alert()) == "alertmanager:fp:fp1"
    assert incident_key(alert(fingerprint="fp2")) == "alertmanager:fp:fp2"
    assert incident_key(alert(source="custom")) == "custom:fp:fp1"
    (datadog,) = load("datadog", "datadog.json")
    assert incident_key(datadog) == "datadog:fp:9bd4ac313a4d1e8fae2482df7b77628"
    disk, backup = load("custom", "custom.json")
    assert incident_key(disk) != incident_key(backup)


def test_incident_key_source_prefix_separates_tools() -> None:
    same = {"group_key": "{}:{}"}
    assert incident_key(alert(**same)) != incident_key(alert(source="grafana", **same))
