from __future__ import annotations

import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import Recipient
from providers.http import HttpClient
from providers.ntfy import NtfyConfig, NtfyProvider, ntfy_message, parse_priority
from tests.fakes.receivers import Reply
from tests.unit.providers.conftest import make_notification

TOKEN = "tk_ntfySECRETtoken000000000000"
# field names of ntfy's JSON publishing (server/types.go, publishMessage)
NTFY_FIELDS = {
    "topic",
    "message",
    "title",
    "priority",
    "tags",
    "click",
    "actions",
    "attach",
    "markdown",
    "icon",
    "filename",
    "delay",
    "email",
    "call",
}


def provider(recorder, http, **overrides) -> NtfyProvider:
    values = {"server": recorder.base_url, "topic": "imas-alerts", "token": TOKEN}
    values.update(overrides)
    return NtfyProvider(name="ntfy", config=NtfyConfig(**values), http=http)


def test_json_publish(recorder, http):
    recorder.default(
        "/",
        Reply(
            200, body={"id": "hwQ2YpKdmg", "time": 1, "event": "message", "topic": "imas-alerts"}
        ),
    )
    result = provider(recorder, http).send(
        make_notification(), Recipient("default"), idempotency_key="k"
    )
    assert result.data == {"message_id": "hwQ2YpKdmg"}
    (req,) = recorder.requests_for("/")
    assert req.method == "POST"
    assert req.header("Authorization") == f"Bearer {TOKEN}"
    body = req.json
    assert set(body) <= NTFY_FIELDS
    assert body["topic"] == "imas-alerts"
    assert body["priority"] == 5
    assert body["title"].startswith("[SEV1_CRITICAL] INC-A1B2C3")
    assert "Service: redis-prod" in body["message"]
    assert body["click"] == "https://imas.example.com/incidents/INC-A1B2C3"
    assert body["tags"][0] == "rotating_light"
    labels = [a["label"] for a in body["actions"]]
    assert labels == ["LID", "War room", "Runbook"]
    assert all(a["action"] == "view" and a["url"].startswith("https://") for a in body["actions"])


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("SEV1_CRITICAL", 5), ("SEV2_HIGH", 4), ("SEV3_MEDIUM", 3), ("SEV4_LOW", 2)],
)
def test_priority_from_severity(severity, priority):
    assert ntfy_message(make_notification(severity=severity), "t", None)["priority"] == priority


def test_resolved_is_not_urgent():
    body = ntfy_message(make_notification("resolved", status="RESOLVED"), "t", None)
    assert body["priority"] == 3
    assert body["tags"][0] == "white_check_mark"


def test_configured_priority_wins(recorder, http):
    provider(recorder, http, priority="min").send(
        make_notification(), Recipient("default"), idempotency_key="k"
    )
    assert recorder.requests[0].json["priority"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("min", 1),
        ("low", 2),
        ("default", 3),
        ("high", 4),
        ("urgent", 5),
        ("max", 5),
        (4, 4),
        ("2", 2),
        (None, None),
    ],
)
def test_parse_priority(value, expected):
    assert parse_priority(value) == expected
    if value is not None:
        assert NtfyConfig(topic="t", priority=value).priority == expected


@pytest.mark.parametrize("value", ["loud", 0, 6, "7", True, 2.5])
def test_invalid_priority(value):
    with pytest.raises(ValueError):
        NtfyConfig(topic="t", priority=value)


def test_config_validation():
    cfg = NtfyConfig(topic="imas")
    assert cfg.server == "https://ntfy.sh" and cfg.token is None and cfg.priority is None
    with pytest.raises(ValueError):
        NtfyConfig(topic="bad topic/with slash")
    with pytest.raises(ValueError):
        NtfyConfig(topic="t", server="ntfy.sh")


def test_without_token_no_auth_header(recorder, http):
    provider(recorder, http, token=None).send(
        make_notification(), Recipient("default"), idempotency_key="k"
    )
    assert recorder.requests[0].header("Authorization") is None


def test_no_actions_without_links():
    body = ntfy_message(
        make_notification(lid_url=None, war_room_url=None, runbook_url=None), "t", None
    )
    assert "actions" not in body


def test_faults(recorder, http):
    recorder.script(
        "/",
        [
            (500, {}, "x"),
            (429, {"Retry-After": "2"}, {"code": 42901, "http": 429, "error": "limit reached"}),
            (401, {}, {"code": 40101, "http": 401, "error": "unauthorized"}),
            (403, {}, {"code": 40301, "http": 403, "error": "forbidden"}),
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
        assert TOKEN not in perm.value.describe()
    with pytest.raises(RetryableProviderError):
        p.send(n, Recipient("default"), idempotency_key="k")


def test_private_guard(recorder):
    with pytest.raises(PermanentProviderError):
        provider(recorder, HttpClient()).send(
            make_notification(), Recipient("default"), idempotency_key="k"
        )
    assert recorder.requests == []


def test_check(recorder, http):
    recorder.default("/v1/health", Reply(200, body={"healthy": True}))
    recorder.script("/v1/account", [(200, {}, {"username": "imas"}), (401, {}, {"code": 40101})])
    p = provider(recorder, http)
    assert p.check().ok
    assert recorder.requests_for("/v1/account")[0].header("Authorization") == f"Bearer {TOKEN}"
    bad = p.check()
    assert not bad.ok and TOKEN not in bad.detail
    assert recorder.requests_for("/") == []
