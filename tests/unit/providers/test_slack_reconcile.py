"""Slack reconciliation after a lost response (issue 11): the retry finds IMAS's own
message by its metadata however many messages were posted in between, in a channel and
in a DM, and does not post a second time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from imas_standins.slack_api import FakeSlack

from bot.domain.errors import RetryableProviderError
from providers.base import Recipient, delivery_attempt, delivery_since
from providers.http import HttpClient
from providers.slack import METADATA_EVENT, SlackConfig, SlackProvider
from storage.models import utcnow
from tests.unit.providers.conftest import make_notification

TOKEN = "xoxb-reconcile"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack(bot_token=TOKEN)
    slack.start()
    yield slack
    slack.stop()


def provider(fake: FakeSlack) -> SlackProvider:
    config = SlackConfig(bot_token=TOKEN, endpoint=fake.url)
    return SlackProvider(
        name="slack",
        config=config,
        http=HttpClient(connect_timeout=2.0, read_timeout=5.0, allow_private=True),
    )


def send(slack: SlackProvider, recipient: Recipient, *, attempt: int, since, key: str):
    tokens = delivery_attempt.set(attempt), delivery_since.set(since)
    try:
        return slack.send(make_notification(), recipient, idempotency_key=key)
    finally:
        delivery_since.reset(tokens[1])
        delivery_attempt.reset(tokens[0])


def ours(messages, key):
    return [
        m
        for m in messages
        if (m.get("metadata") or {}).get("event_type") == METADATA_EVENT
        and m["metadata"]["event_payload"]["key"] == key
    ]


@pytest.mark.parametrize("others", [0, 65, 450])
def test_announcement_once_however_busy_the_channel(fake: FakeSlack, others: int) -> None:
    fake.add_user("U0HUMAN001", "human")
    channel = fake.add_channel("team-sre", members=["U0HUMAN001"])
    slack = provider(fake)
    started = utcnow()  # recorded by the outbox's claim, before any call
    fake.inject("chat.postMessage", drop_response=True)
    with pytest.raises(RetryableProviderError):
        send(slack, Recipient("channel", channel), attempt=1, since=started, key="notify:1:a")
    for n in range(others):  # the channel is busy (other incidents, people) before the retry
        fake.post_as_user(channel, "U0HUMAN001", f"message {n}")
    result = send(slack, Recipient("channel", channel), attempt=2, since=started, key="notify:1:a")
    [announcement] = ours(fake.messages(channel), "notify:1:a")
    assert result.data["ts"] == announcement["ts"]
    assert fake.count("chat.postMessage") == 1


def test_reconciliation_reads_from_the_first_attempt_on(fake: FakeSlack) -> None:
    """The history read starts at the step's first claim (less a skew margin)."""
    channel = fake.add_channel("team-db")
    slack = provider(fake)
    started = utcnow()
    send(slack, Recipient("channel", channel), attempt=2, since=started, key="notify:2:a")
    [history] = [c for c in fake.calls if c.method == "conversations.history"]
    oldest = float(history.args["oldest"])
    assert oldest <= started.timestamp() and oldest >= (started - timedelta(hours=1)).timestamp()


def test_dm_once_after_a_lost_response(fake: FakeSlack) -> None:
    fake.add_user("U0ALICE001", "alice")
    slack = provider(fake)
    started = utcnow()
    fake.inject("chat.postMessage", drop_response=True)
    with pytest.raises(RetryableProviderError):
        send(slack, Recipient("user", "U0ALICE001"), attempt=1, since=started, key="notify:3:u")
    result = send(
        slack, Recipient("user", "U0ALICE001"), attempt=2, since=started, key="notify:3:u"
    )
    dm = fake.dm_channel("U0ALICE001")
    assert dm is not None
    [message] = ours(fake.messages(dm), "notify:3:u")
    assert result.data["ts"] == message["ts"] and fake.count("chat.postMessage") == 1


@pytest.mark.parametrize("target", ["channel", "user"])
def test_slack_post_step_posts_once_after_a_lost_response(fake: FakeSlack, target: str) -> None:
    """Role DMs, war-room notes, reminders (``slack_post`` rows) reconcile the same way."""
    from bot.flows.slack_steps import post_once
    from providers.guard import AddressPolicy
    from providers.slack_api import SlackApi
    from storage.models import OutboxItem

    fake.add_user("U0BOB00001", "bob")
    where = fake.add_channel("inc-x") if target == "channel" else "U0BOB00001"
    api = SlackApi(token=TOKEN, base_url=fake.url, policy=AddressPolicy(allow_private=True))
    item = OutboxItem(idempotency_key="role_dm:7", attempts=1, first_claimed_at=utcnow())
    fake.inject("chat.postMessage", drop_response=True)
    with pytest.raises(RetryableProviderError):
        post_once(api, item, channel=where, text="hi", blocks=None, short_id="INC-1")
    for n in range(70):
        fake.post_as_user(fake.dm_channel("U0BOB00001") or where, "U0BOB00001", f"m{n}")
    item.attempts = 2
    ts = post_once(api, item, channel=where, text="hi", blocks=None, short_id="INC-1")
    channel = where if target == "channel" else fake.dm_channel("U0BOB00001")
    assert [m["ts"] for m in ours(fake.messages(channel), "role_dm:7")] == [ts]
    assert fake.count("chat.postMessage") == 1
