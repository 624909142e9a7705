from __future__ import annotations

import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import Recipient
from providers.discord import DiscordConfig, DiscordProvider, discord_payload, with_wait
from providers.http import HttpClient
from tests.fakes.receivers import Reply
from tests.unit.providers.conftest import make_notification

PATH = "/api/webhooks/123456/discord-token-SECRET"


def provider(recorder, http) -> DiscordProvider:
    config = DiscordConfig(webhook_url=recorder.url(PATH))
    return DiscordProvider(name="Discord", config=config, http=http)


def test_posts_embed_with_wait(recorder, http, notification):
    recorder.default(PATH, Reply(200, body={"id": "1100", "channel_id": "99"}))
    result = provider(recorder, http).send(notification, Recipient("default"), idempotency_key="k1")
    assert result.data == {"message_id": "1100"}
    (req,) = recorder.requests_for(PATH)
    assert req.method == "POST"
    assert req.query == {"wait": ["true"]}
    body = req.json
    assert body["username"] == "IMAS"
    assert body["allowed_mentions"] == {"parse": []}
    (embed,) = body["embeds"]
    assert embed["title"].startswith("🔴 [SEV1_CRITICAL] INC-A1B2C3")
    assert embed["color"] == 0xD32F2F
    assert embed["url"] == "https://imas.example.com/incidents/INC-A1B2C3"
    names = [f["name"] for f in embed["fields"]]
    assert names[:5] == ["Severity", "Status", "Service", "Team", "Lead"]
    assert {"LID", "Runbook", "War room"} <= set(names)
    assert embed["timestamp"].endswith("Z")
    assert "All writes" in embed["description"]


def test_embed_respects_discord_limits():
    n = make_notification(
        "status_update", title="T" * 1000, description="D" * 10000, text="U" * 5000
    )
    embed = discord_payload(n)["embeds"][0]
    assert len(embed["title"]) <= 256
    assert len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in embed["fields"])
    total = (
        len(embed["title"])
        + len(embed["description"])
        + len(embed["footer"]["text"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000


def test_colour_follows_severity():
    assert discord_payload(make_notification(severity="SEV4_LOW"))["embeds"][0]["color"] == 0x388E3C


def test_with_wait_keeps_other_query_params():
    assert with_wait("https://d.example/api/webhooks/1/t?thread_id=5") == (
        "https://d.example/api/webhooks/1/t?thread_id=5&wait=true"
    )


def test_429_json_retry_after(recorder, http, notification):
    recorder.script(
        PATH,
        [
            (
                429,
                {},
                {"message": "You are being rate limited.", "retry_after": 2.5, "global": False},
            )
        ],
    )
    with pytest.raises(RetryableProviderError) as err:
        provider(recorder, http).send(notification, Recipient("default"), idempotency_key="k")
    assert err.value.retry_after == 2.5


def test_429_retry_after_header(recorder, http, notification):
    recorder.script(PATH, [(429, {"Retry-After": "2"}, {"retry_after": 1.7})])
    with pytest.raises(RetryableProviderError) as err:
        provider(recorder, http).send(notification, Recipient("default"), idempotency_key="k")
    assert err.value.retry_after == 2


def test_500_is_retryable(recorder, http, notification):
    recorder.script(PATH, [(500, {}, "oops")])
    with pytest.raises(RetryableProviderError):
        provider(recorder, http).send(notification, Recipient("default"), idempotency_key="k")


def test_401_and_404_are_permanent_without_the_token(recorder, http, notification):
    recorder.script(PATH, [(401, {}, {"message": "Invalid Webhook Token", "code": 50027})])
    recorder.script(PATH, [(404, {}, {"message": "Unknown Webhook", "code": 10015})])
    p = provider(recorder, http)
    for _ in range(2):
        with pytest.raises(PermanentProviderError) as err:
            p.send(notification, Recipient("default"), idempotency_key="k")
        assert "discord-token-SECRET" not in str(err.value)
        assert "discord-token-SECRET" not in err.value.describe()


def test_hanging_target_times_out(recorder, http, notification):
    recorder.script(PATH, [Reply(hang=3)])
    with pytest.raises(RetryableProviderError) as err:
        provider(recorder, http).send(notification, Recipient("default"), idempotency_key="k")
    assert err.value.code == "timeout"


def test_lost_response_is_retryable(recorder, http, notification):
    recorder.script(PATH, [Reply(drop=True)])
    with pytest.raises(RetryableProviderError):
        provider(recorder, http).send(notification, Recipient("default"), idempotency_key="k")
    assert len(recorder.requests_for(PATH)) == 1


def test_private_target_refused_by_default(recorder, notification):
    p = provider(recorder, HttpClient(allow_private=False))
    with pytest.raises(PermanentProviderError) as err:
        p.send(notification, Recipient("default"), idempotency_key="k")
    assert err.value.code == "private_target"
    assert recorder.requests == []


def test_wrong_recipient_kind(recorder, http, notification):
    with pytest.raises(PermanentProviderError):
        provider(recorder, http).send(
            notification, Recipient("email", "a@b.c"), idempotency_key="k"
        )


def test_check_reads_webhook(recorder, http):
    recorder.default(
        PATH, Reply(200, body={"id": "123456", "name": "imas-hook", "channel_id": "77"})
    )
    result = provider(recorder, http).check()
    assert result.ok and "imas-hook" in result.detail
    assert recorder.requests_for(PATH)[0].method == "GET"
    recorder.default(PATH, Reply(401, body={"message": "Invalid Webhook Token"}))
    bad = provider(recorder, http).check()
    assert not bad.ok and "discord-token-SECRET" not in bad.detail


def test_config_validation():
    with pytest.raises(ValueError):
        DiscordConfig(webhook_url="not a url")
    with pytest.raises(ValueError):
        DiscordConfig(webhook_url="https://discord.com/api/webhooks/1/t", extra="x")
