from __future__ import annotations

import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import Recipient
from providers.http import HttpClient
from providers.teams import TeamsConfig, TeamsProvider, teams_message
from tests.fakes.receivers import Reply
from tests.unit.providers.conftest import make_notification

PATH = "/workflows/abc/triggers/manual/paths/invoke"
SECRET_QS = "sig=teams-SIGNATURE-secret"


def provider(recorder, http) -> TeamsProvider:
    config = TeamsConfig(webhook_url=recorder.url(PATH) + "?api-version=1&" + SECRET_QS)
    return TeamsProvider(name="Teams", config=config, http=http)


def test_posts_adaptive_card(recorder, http):
    recorder.default(PATH, Reply(202, body=b""))
    n = make_notification("status_update", text="Failover done")
    result = provider(recorder, http).send(n, Recipient("default"), idempotency_key="k")
    assert "HTTP 202" in result.detail
    (req,) = recorder.requests_for(PATH)
    assert req.query["sig"] == ["teams-SIGNATURE-secret"]
    body = req.json
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    kinds = [b["type"] for b in card["body"]]
    assert kinds[0] == "TextBlock" and "FactSet" in kinds
    assert card["body"][0]["text"].startswith("🔴 [SEV1_CRITICAL] INC-A1B2C3")
    facts = {f["title"]: f["value"] for f in card["body"][kinds.index("FactSet")]["facts"]}
    assert facts["Service"] == "redis-prod" and facts["Team"] == "SRE Core"
    assert any("Failover done" in b.get("text", "") for b in card["body"])
    actions = {a["title"]: a["url"] for a in card["actions"]}
    assert all(a["type"] == "Action.OpenUrl" for a in card["actions"])
    assert actions["View incident"] == "https://imas.example.com/incidents/INC-A1B2C3"
    assert {"LID", "Runbook", "War room"} <= set(actions)


def test_card_skips_non_http_links():
    card = teams_message(make_notification(runbook_url="javascript:alert(1)"))
    titles = [a["title"] for a in card["attachments"][0]["content"]["actions"]]
    assert "Runbook" not in titles


def test_resolved_card_is_green():
    card = teams_message(make_notification("resolved", status="RESOLVED"))
    assert card["attachments"][0]["content"]["body"][0]["color"] == "Good"


def test_legacy_connector_200_with_error_text(recorder, http, notification):
    recorder.script(
        PATH,
        [
            (200, {}, "Microsoft Teams endpoint returned HTTP error 429 with ContextId x"),
            (
                200,
                {},
                "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 400",
            ),
            (200, {}, "1"),
        ],
    )
    p = provider(recorder, http)
    with pytest.raises(RetryableProviderError):
        p.send(notification, Recipient("default"), idempotency_key="k")
    with pytest.raises(PermanentProviderError):
        p.send(notification, Recipient("default"), idempotency_key="k")
    p.send(notification, Recipient("default"), idempotency_key="k")


def test_faults(recorder, http, notification):
    recorder.script(PATH, [(503, {}, "busy"), (429, {"Retry-After": "2"}, ""), (403, {}, "no")])
    p = provider(recorder, http)
    with pytest.raises(RetryableProviderError):
        p.send(notification, Recipient("default"), idempotency_key="k")
    with pytest.raises(RetryableProviderError) as err:
        p.send(notification, Recipient("default"), idempotency_key="k")
    assert err.value.retry_after == 2
    with pytest.raises(PermanentProviderError) as perm:
        p.send(notification, Recipient("default"), idempotency_key="k")
    assert "SIGNATURE" not in perm.value.describe()


def test_timeout_and_private_guard(recorder, http, notification):
    recorder.script(PATH, [Reply(hang=2)])
    with pytest.raises(RetryableProviderError):
        provider(recorder, http).send(notification, Recipient("default"), idempotency_key="k")
    with pytest.raises(PermanentProviderError):
        provider(recorder, HttpClient()).send(
            notification, Recipient("default"), idempotency_key="k"
        )


def test_check_is_config_only(recorder, http):
    assert provider(recorder, http).check().ok
    assert recorder.requests == []
