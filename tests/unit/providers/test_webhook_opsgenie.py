from __future__ import annotations

import jsonschema
import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import Recipient
from providers.http import HttpClient
from providers.webhook import WebhookConfig, WebhookProvider, opsgenie_create
from tests.fakes.receivers import Reply
from tests.unit.providers.conftest import make_notification, opsgenie_schema

API_KEY = "genie-API-KEY-secret-0000"
ALIAS = "imas-INC-A1B2C3"
ACCEPTED = Reply(
    202, body={"result": "Request will be processed", "took": 0.1, "requestId": "req-1"}
)


def provider(recorder, http, **overrides) -> WebhookProvider:
    values = {"format": "opsgenie", "endpoint": recorder.base_url, "api_key": API_KEY}
    values.update(overrides)
    return WebhookProvider(name="Opsgenie", config=WebhookConfig(**values), http=http)


def allowed_keys(definitions, name) -> set[str]:
    keys: set[str] = set()
    node = definitions[name]
    keys |= set(node.get("properties", {}))
    for part in node.get("allOf", []):
        if "$ref" in part:
            keys |= allowed_keys(definitions, part["$ref"].rsplit("/", 1)[1])
        keys |= set(part.get("properties", {}))
    return keys


def validate(definitions, name, body) -> None:
    jsonschema.Draft4Validator(opsgenie_schema(definitions, name)).validate(body)
    assert set(body) <= allowed_keys(definitions, name), "keys not in the Opsgenie definition"


def test_schema_quirk_is_handled(opsgenie_definitions):
    props = opsgenie_definitions["CreateAlertPayload"]["allOf"][1]["properties"]
    assert "priority" in props and props["priority"]["enum"][0] == "P1"


def test_create_alert(recorder, http, opsgenie_definitions):
    recorder.default("/v2/alerts", ACCEPTED)
    result = provider(recorder, http).send(
        make_notification("created"), Recipient("default"), idempotency_key="k"
    )
    assert result.data == {"alias": ALIAS, "request_id": "req-1"}
    (req,) = recorder.requests_for("/v2/alerts")
    assert req.method == "POST"
    assert req.header("Authorization") == f"GenieKey {API_KEY}"
    body = req.json
    validate(opsgenie_definitions, "CreateAlertPayload", body)
    assert body["alias"] == ALIAS
    assert body["priority"] == "P1"
    assert body["source"] == "IMAS"
    assert body["entity"] == "redis-prod"
    assert len(body["message"]) <= 130
    assert all(isinstance(v, str) for v in body["details"].values())
    assert "imas" in body["tags"]


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("SEV1_CRITICAL", "P1"), ("SEV2_HIGH", "P2"), ("SEV3_MEDIUM", "P3"), ("SEV4_LOW", "P4")],
)
def test_priority_mapping(severity, priority, opsgenie_definitions):
    body = opsgenie_create(make_notification(severity=severity, title="t" * 500, text="x"))
    validate(opsgenie_definitions, "CreateAlertPayload", body)
    assert body["priority"] == priority
    assert len(body["message"]) <= 130


@pytest.mark.parametrize(
    ("event", "verb", "definition"),
    [
        ("acknowledged", "acknowledge", "AcknowledgeAlertPayload"),
        ("mitigated", "acknowledge", "AcknowledgeAlertPayload"),
        ("resolved", "close", "CloseAlertPayload"),
    ],
)
def test_ack_and_close_by_alias(recorder, http, opsgenie_definitions, event, verb, definition):
    path = f"/v2/alerts/{ALIAS}/{verb}"
    recorder.default(path, ACCEPTED)
    provider(recorder, http).send(
        make_notification(event, text="done"), Recipient("default"), idempotency_key="k"
    )
    (req,) = recorder.requests_for(path)
    assert req.query == {"identifierType": ["alias"]}
    validate(opsgenie_definitions, definition, req.json)
    assert req.json["source"] == "IMAS" and req.json["user"] == "Bob Durand"


@pytest.mark.parametrize(
    "event", ["status_update", "escalated", "severity_changed", "reopened", "page"]
)
def test_trigger_like_events_create_with_same_alias(recorder, http, opsgenie_definitions, event):
    recorder.default("/v2/alerts", ACCEPTED)
    provider(recorder, http).send(
        make_notification(event, text="more"), Recipient("default"), idempotency_key="k"
    )
    body = recorder.requests_for("/v2/alerts")[0].json
    validate(opsgenie_definitions, "CreateAlertPayload", body)
    assert body["alias"] == ALIAS


def test_late_create_for_resolved_incident_closes(recorder, http):
    provider(recorder, http).send(
        make_notification("status_update", status="RESOLVED"),
        Recipient("default"),
        idempotency_key="k",
    )
    assert recorder.requests[0].path == f"/v2/alerts/{ALIAS}/close"


def test_base_url_selection():
    def base(**kw):
        return WebhookProvider(
            name="o", config=WebhookConfig(format="opsgenie", api_key="k", **kw), http=HttpClient()
        ).opsgenie_base()

    assert base() == "https://api.opsgenie.com"
    assert base(endpoint="https://api.eu.opsgenie.com/") == "https://api.eu.opsgenie.com"
    assert base(url="https://api.eu.opsgenie.com/v2/alerts") == "https://api.eu.opsgenie.com"


def test_faults_and_secret_hygiene(recorder, http):
    recorder.script(
        "/v2/alerts",
        [
            (503, {}, "down"),
            (429, {"Retry-After": "2"}, ""),
            (401, {}, {"message": "Could not authenticate", "took": 0.0, "requestId": "r"}),
            (422, {}, {"message": "Request body is not processable", "took": 0.0}),
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
        assert API_KEY not in perm.value.describe()


def test_check(recorder, http):
    recorder.script("/v2/alerts", [(200, {}, {"data": []}), (403, {}, {}), (401, {}, {})])
    p = provider(recorder, http)
    assert p.check().ok
    assert recorder.requests[0].method == "GET"
    assert recorder.requests[0].header("Authorization") == f"GenieKey {API_KEY}"
    assert p.check().ok  # 403: key valid, no read access
    bad = p.check()
    assert not bad.ok and API_KEY not in bad.detail


def test_config_requires_api_key():
    with pytest.raises(ValueError, match="api_key"):
        WebhookConfig(format="opsgenie")
