from __future__ import annotations

from datetime import datetime

import jsonschema
import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import EVENTS, Recipient
from providers.http import HttpClient
from providers.webhook import WebhookConfig, WebhookProvider, pagerduty_event
from tests.fakes.receivers import Reply
from tests.unit.providers.conftest import make_notification

PATH = "/v2/enqueue"
ROUTING_KEY = "R0UTINGKEYsecret0123456789abcdef"
ACCEPTED = Reply(
    202, body={"status": "success", "message": "Event processed", "dedup_key": "imas-INC-A1B2C3"}
)


def provider(recorder, http, **overrides) -> WebhookProvider:
    values = {"format": "pagerduty", "url": recorder.url(PATH), "routing_key": ROUTING_KEY}
    values.update(overrides)
    return WebhookProvider(name="PagerDuty", config=WebhookConfig(**values), http=http)


def validate(schema, body) -> None:
    jsonschema.Draft7Validator(schema).validate(body)
    assert set(body) <= set(schema["properties"]), "unknown top-level keys"
    if "payload" in body:
        payload_schema = schema["components"]["schemas"]["Payload"]
        assert set(body["payload"]) <= set(payload_schema["properties"])
        datetime.fromisoformat(body["payload"]["timestamp"].replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("event", "action"),
    [
        ("created", "trigger"),
        ("escalated", "trigger"),
        ("page", "trigger"),
        ("severity_changed", "trigger"),
        ("reopened", "trigger"),
        ("status_update", "trigger"),
        ("test", "trigger"),
        ("acknowledged", "acknowledge"),
        ("mitigated", "acknowledge"),
        ("resolved", "resolve"),
    ],
)
def test_event_actions_validate_against_schema(recorder, http, pagerduty_schema, event, action):
    recorder.default(PATH, ACCEPTED)
    result = provider(recorder, http).send(
        make_notification(event, text="words"), Recipient("default"), idempotency_key="k"
    )
    assert result.data == {"dedup_key": "imas-INC-A1B2C3"}
    (req,) = recorder.requests_for(PATH)
    body = req.json
    validate(pagerduty_schema, body)
    assert body["event_action"] == action
    assert body["dedup_key"] == "imas-INC-A1B2C3"
    assert body["routing_key"] == ROUTING_KEY


def test_trigger_payload_content(pagerduty_schema):
    body = pagerduty_event(make_notification("created"), ROUTING_KEY)
    validate(pagerduty_schema, body)
    payload = body["payload"]
    assert (
        payload["summary"]
        == "[SEV1_CRITICAL] INC-A1B2C3 Redis primary unreachable - redis-prod: created"
    )
    assert payload["severity"] == "critical"
    assert payload["source"] == "imas"
    assert payload["component"] == "redis-prod"
    assert payload["group"] == "SRE Core"
    assert payload["custom_details"]["incident_url"].endswith("INC-A1B2C3")
    assert {link["text"] for link in body["links"]} == {"Incident", "LID", "Runbook", "War room"}
    assert body["client_url"] == "https://imas.example.com/incidents/INC-A1B2C3"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("SEV1_CRITICAL", "critical"),
        ("SEV2_HIGH", "error"),
        ("SEV3_MEDIUM", "warning"),
        ("SEV4_LOW", "info"),
    ],
)
def test_severity_mapping(severity, expected):
    assert (
        pagerduty_event(make_notification(severity=severity), "k")["payload"]["severity"]
        == expected
    )


def test_long_summary_truncated(pagerduty_schema):
    body = pagerduty_event(make_notification(title="x" * 3000), ROUTING_KEY)
    validate(pagerduty_schema, body)
    assert len(body["payload"]["summary"]) <= 1024


def test_dedup_key_same_for_every_event():
    keys = {pagerduty_event(make_notification(e), "k")["dedup_key"] for e in EVENTS}
    assert keys == {"imas-INC-A1B2C3"}


def test_late_trigger_on_resolved_incident_resolves(pagerduty_schema):
    body = pagerduty_event(make_notification("created", status="RESOLVED"), ROUTING_KEY)
    validate(pagerduty_schema, body)
    assert body["event_action"] == "resolve"


def test_retry_after_lost_response_reuses_dedup_key(recorder, http):
    recorder.script(PATH, [Reply(drop=True)])
    recorder.default(PATH, ACCEPTED)
    p = provider(recorder, http)
    with pytest.raises(RetryableProviderError):
        p.send(make_notification(), Recipient("default"), idempotency_key="k")
    p.send(make_notification(), Recipient("default"), idempotency_key="k")
    first, second = recorder.requests_for(PATH)
    assert first.json == second.json  # same dedup_key: PagerDuty folds the repeat
    assert WebhookProvider.supports_dedup


def test_faults(recorder, http):
    recorder.script(
        PATH,
        [
            (500, {}, {"status": "error", "message": "boom", "errors": []}),
            (429, {"Retry-After": "2"}, ""),
            (
                400,
                {},
                {"status": "invalid event", "message": "Event object is invalid", "errors": ["x"]},
            ),
            (401, {}, "unauthorized"),
            Reply(hang=2),
        ],
    )
    p = provider(recorder, http)
    n = make_notification()
    with pytest.raises(RetryableProviderError):
        p.send(n, Recipient("default"), idempotency_key="k")
    with pytest.raises(RetryableProviderError) as rl:
        p.send(n, Recipient("default"), idempotency_key="k")
    assert rl.value.retry_after == 2
    for _ in range(2):
        with pytest.raises(PermanentProviderError) as perm:
            p.send(n, Recipient("default"), idempotency_key="k")
        assert ROUTING_KEY not in perm.value.describe()
    with pytest.raises(RetryableProviderError) as slow:
        p.send(n, Recipient("default"), idempotency_key="k")
    assert slow.value.code == "timeout"


def test_private_guard(recorder):
    with pytest.raises(PermanentProviderError):
        provider(recorder, HttpClient()).send(
            make_notification(), Recipient("default"), idempotency_key="k"
        )
    assert recorder.requests == []


def test_url_defaults_and_endpoint_override():
    cfg = WebhookConfig(format="pagerduty", routing_key="k")
    p = WebhookProvider(name="pd", config=cfg, http=HttpClient())
    assert p.pagerduty_url() == "https://events.pagerduty.com/v2/enqueue"
    cfg = WebhookConfig(format="PagerDuty", routing_key="k", endpoint="https://pd.example.com/")
    assert WebhookProvider(name="pd", config=cfg, http=HttpClient()).pagerduty_url() == (
        "https://pd.example.com/v2/enqueue"
    )


def test_config_requires_routing_key():
    with pytest.raises(ValueError, match="routing_key"):
        WebhookConfig(format="pagerduty")
    with pytest.raises(ValueError, match="routing_key"):
        WebhookConfig(format="pagerduty", routing_key="  ")
    with pytest.raises(ValueError, match="not used"):
        WebhookConfig(format="pagerduty", routing_key="k", api_key="x")


def test_check_is_config_only(recorder, http):
    assert provider(recorder, http).check().ok
    assert recorder.requests == []
