from __future__ import annotations

import json

import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import IncidentView, Recipient
from providers.http import HttpClient
from providers.teams import teams_message
from providers.webhook import TEMPLATE_VARIABLES, WebhookConfig, WebhookProvider
from tests.fakes.receivers import Reply
from tests.unit.providers.conftest import make_notification

PATH = "/hooks/imas"


def provider(recorder, http, **overrides) -> WebhookProvider:
    values = {"format": "json", "url": recorder.url(PATH)}
    values.update(overrides)
    return WebhookProvider(name="Hook", config=WebhookConfig(**values), http=http)


def test_json_document(recorder, http):
    n = make_notification("status_update", text="Failover done")
    provider(recorder, http, headers={"X-Api-Token": "hdr-SECRET"}).send(
        n, Recipient("default"), idempotency_key="delivery-77"
    )
    (req,) = recorder.requests_for(PATH)
    assert req.header("Idempotency-Key") == "delivery-77"
    assert req.header("webhook-id") == "delivery-77"
    assert req.header("webhook-timestamp").isdigit()
    assert req.header("X-Api-Token") == "hdr-SECRET"
    assert req.header("Content-Type") == "application/json"
    doc = req.json
    assert doc["version"] == 1
    assert doc["event"] == "status_update"
    assert doc["text"] == "Failover done"
    assert doc["actor"] == "Bob Durand"
    assert doc["idempotency_key"] == "delivery-77"
    assert set(doc["incident"]) == set(IncidentView.__dataclass_fields__)
    assert doc["incident"]["created_at"] == "2024-05-17T09:30:00Z"
    assert doc["incident"]["short_id"] == "INC-A1B2C3"


def test_json_retries_carry_the_same_idempotency_key(recorder, http):
    recorder.script(PATH, [(502, {}, "bad gateway")])
    p = provider(recorder, http)
    with pytest.raises(RetryableProviderError):
        p.send(make_notification(), Recipient("default"), idempotency_key="same")
    p.send(make_notification(), Recipient("default"), idempotency_key="same")
    first, second = recorder.requests_for(PATH)
    assert first.header("Idempotency-Key") == second.header("Idempotency-Key") == "same"
    assert first.json == second.json


def test_slack_incoming_webhook(recorder, http):
    recorder.default(PATH, Reply(200, body="ok"))
    n = make_notification("created", description="a <b> & c")
    provider(recorder, http, format="slack").send(n, Recipient("default"), idempotency_key="k")
    body = recorder.requests_for(PATH)[0].json
    assert body["text"].startswith("🔴 [SEV1_CRITICAL] INC-A1B2C3")
    types = [b["type"] for b in body["blocks"]]
    assert types[0] == "header" and "actions" in types
    assert body["blocks"][0]["text"]["text"] == "🔴 Redis primary unreachable - redis-prod"
    assert len(body["blocks"][1]["fields"]) <= 10
    rendered = json.dumps(body)
    assert "a &lt;b&gt; &amp; c" in rendered
    buttons = {e["text"]["text"]: e["url"] for e in body["blocks"][-1]["elements"]}
    assert buttons["View incident"].endswith("INC-A1B2C3")


def test_slack_webhook_errors_are_permanent(recorder, http):
    recorder.script(PATH, [(404, {}, "no_service"), (410, {}, "channel_is_archived")])
    p = provider(recorder, http, format="slack")
    for _ in range(2):
        with pytest.raises(PermanentProviderError):
            p.send(make_notification(), Recipient("default"), idempotency_key="k")


def test_teams_format_reuses_teams_card(recorder, http):
    recorder.default(PATH, Reply(202, body=b""))
    n = make_notification("acknowledged")
    provider(recorder, http, format="teams").send(n, Recipient("default"), idempotency_key="k")
    assert recorder.requests_for(PATH)[0].json == json.loads(json.dumps(teams_message(n)))


CUSTOM = '{"text": "$summary_emoji", "sev": $severity_rank, "who": "${actor}", "cost": "$$5", "t": "$title"}'


def test_custom_template(recorder, http):
    n = make_notification(title='Quote " and backslash \\ and\nnewline')
    provider(recorder, http, format="custom", template=CUSTOM).send(
        n, Recipient("default"), idempotency_key="k9"
    )
    req = recorder.requests_for(PATH)[0]
    assert req.header("Idempotency-Key") == "k9"
    assert req.header("Content-Type") == "application/json"
    doc = req.json
    assert doc["sev"] == 1
    assert doc["who"] == "Bob Durand"
    assert doc["cost"] == "$5"
    assert doc["t"] == 'Quote " and backslash \\ and\nnewline'
    assert doc["text"].startswith("🔴 [SEV1_CRITICAL]")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"a": "$nope"}', "unknown variables nope"),
        ('{"a": $title}', "valid JSON"),
        ('{"a": "$"}', "invalid"),
    ],
)
def test_custom_template_validation(template, message):
    with pytest.raises(ValueError, match=message):
        WebhookConfig(format="custom", url="https://h.example/x", template=template)


def test_template_variables_documented():
    import providers.webhook as module

    for name in TEMPLATE_VARIABLES:
        assert f"``{name}``" in module.__doc__, name


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"format": "json"}, "requires url"),
        ({"format": "slack"}, "requires url"),
        ({"format": "custom", "url": "https://h.example"}, "requires template"),
        ({"format": "json", "url": "https://h.example", "template": "{}"}, "not used"),
        (
            {"format": "json", "url": "https://h.example", "endpoint": "https://e.example"},
            "not used",
        ),
        ({"format": "xml", "url": "https://h.example"}, "format"),
        ({"url": "https://h.example", "headers": {"Bad Name": "v"}}, "header name"),
        ({"url": "https://h.example", "headers": {"X-A": "v\r\nX-B: w"}}, "line break"),
        ({"url": "ftp://h.example"}, "http"),
    ],
)
def test_config_validation(values, message):
    with pytest.raises(ValueError, match=message):
        WebhookConfig(**values)


def test_faults(recorder, http):
    recorder.script(PATH, [(429, {"Retry-After": "2"}, ""), (401, {}, "nope"), Reply(hang=2)])
    p = provider(recorder, http)
    with pytest.raises(RetryableProviderError) as rl:
        p.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert rl.value.retry_after == 2
    with pytest.raises(PermanentProviderError):
        p.send(make_notification(), Recipient("default"), idempotency_key="k")
    with pytest.raises(RetryableProviderError) as slow:
        p.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert slow.value.code == "timeout"


def test_private_guard_and_recipient_kind(recorder, http):
    with pytest.raises(PermanentProviderError) as err:
        provider(recorder, HttpClient()).send(
            make_notification(), Recipient("default"), idempotency_key="k"
        )
    assert err.value.code == "private_target"
    with pytest.raises(PermanentProviderError):
        provider(recorder, http).send(
            make_notification(), Recipient("channel", "C1"), idempotency_key="k"
        )
    assert recorder.requests == []
