"""The outbox bulkhead (issue 11 item 5): a target that accepts the request and never
answers holds at most its provider's share of the workers; Slack deliveries queued
behind its rows all complete while the hanging ones are still in flight."""

from __future__ import annotations

import threading
from typing import Any

from imas_standins.slack_api import HANG_GUARD_SECONDS, FakeSlack

from bot.outbox import OutboxWorker
from bot.runtime import Runtime
from providers.base import Recipient
from providers.http import HttpClient
from providers.slack import SlackConfig, SlackProvider
from providers.webhook import WebhookConfig, WebhookProvider
from storage import outbox as store
from storage.models import OutboxItem
from tests.conftest import BOT_TOKEN
from tests.fakes.receivers import HttpRecorder, Reply
from tests.scenario.conftest import wait_until
from tests.unit.providers.conftest import make_notification


def test_a_hanging_provider_never_holds_the_slack_deliveries(
    make_settings: Any, fake_slack: FakeSlack
) -> None:
    rt = Runtime.build(make_settings(outbox_workers=4, outbox_poll_seconds=0.05))
    assert rt.settings.provider_budget == 2
    hanging = HttpRecorder().start()
    hanging.default("/hook", Reply(hang=HANG_GUARD_SECONDS))  # reads, never answers
    channel = fake_slack.add_channel("team-sre")
    http = HttpClient(connect_timeout=2.0, read_timeout=HANG_GUARD_SECONDS, allow_private=True)
    providers = {
        "hang": WebhookProvider(
            name="hang", config=WebhookConfig(format="json", url=hanging.url("/hook")), http=http
        ),
        "slack": SlackProvider(
            name="slack",
            config=SlackConfig(bot_token=BOT_TOKEN, endpoint=fake_slack.url),
            http=http,
        ),
    }
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def notify(_rt: Runtime, item: OutboxItem) -> dict[str, Any]:
        with lock:
            in_use = worker.in_use()
            for key, n in in_use.items():
                peak[key] = max(peak.get(key, 0), n)
        provider = providers[item.provider_name or ""]
        result = provider.send(
            make_notification(short_id=f"INC-{item.id:06d}"),
            Recipient(item.recipient_kind or "", item.recipient or ""),
            idempotency_key=item.idempotency_key,
        )
        return dict(result.data)

    worker = OutboxWorker(rt, steps={"notify": notify})
    with rt.transaction() as session:
        for n in range(8):  # queued first: more than all the workers
            store.enqueue(
                session,
                kind="notify",
                idempotency_key=f"hang-{n}",
                provider_name="hang",
                recipient_kind="default",
                recipient="",
            )
        for n in range(5):
            store.enqueue(
                session,
                kind="notify",
                idempotency_key=f"slack-{n}",
                provider_name="slack",
                recipient_kind="channel",
                recipient=channel,
            )
    worker.start()
    try:
        wait_until(lambda: len(hanging.requests_for("/hook")) >= 2, "two hanging requests")

        def slack_done() -> bool:
            with rt.transaction() as session:
                return (
                    session.query(OutboxItem)
                    .filter(OutboxItem.provider_name == "slack", OutboxItem.state == "done")
                    .count()
                    == 5
                )

        wait_until(slack_done, "every Slack delivery")
        # All Slack deliveries finished while the hanging ones were still in flight.
        with rt.transaction() as session:
            hung = (
                session.query(OutboxItem)
                .filter(OutboxItem.provider_name == "hang")
                .order_by(OutboxItem.id)
                .all()
            )
        assert [row.state for row in hung].count("in_flight") == 2
        assert all(row.state == "pending" for row in hung if row.state != "in_flight")
        assert len(hanging.requests_for("/hook")) == 2  # never more than its share
        assert len(fake_slack.messages(channel)) == 5
        assert peak.get("provider:hang", 0) <= 2
    finally:
        hanging.stop()  # the hanging requests are answered; the worker drains
        worker.stop()
