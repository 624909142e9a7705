"""The outbox bulkhead (issue 11 item 5): a target that accepts the request and never
answers holds at most its provider's share of the workers, non-Slack targets together
never take Slack's share, and Slack deliveries queued behind the hanging rows all
complete while those are still in flight."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from imas_standins.slack_api import HANG_GUARD_SECONDS, FakeSlack

from bot import config_file
from bot.outbox import OutboxWorker
from bot.runtime import Runtime
from providers.base import Recipient
from storage import outbox as store
from storage.models import OutboxItem
from tests.conftest import BOT_TOKEN
from tests.fakes.receivers import HttpRecorder, Reply
from tests.scenario.conftest import wait_until
from tests.unit.providers.conftest import make_notification


def configure(rt: Runtime, fake_slack: FakeSlack, hanging: HttpRecorder, names: list[str]) -> None:
    hooks = "".join(
        f'  - {{name: {name}, type: WEBHOOK, config: {{format: json, url: "{hanging.url("/hook")}"}}}}\n'
        for name in names
    )
    text = f"""
providers:
  - {{name: slack, type: SLACK, config: {{bot_token: "{BOT_TOKEN}", endpoint: "{fake_slack.url}"}}}}
{hooks}"""
    with rt.transaction() as session:
        config_file.apply(session, rt, config_file.parse(text, {}, allow_private=True))


@pytest.mark.parametrize("hanging_providers", [["hang"], ["hang", "hang2"]])
def test_hanging_providers_never_hold_the_slack_deliveries(
    make_settings: Any, fake_slack: FakeSlack, hanging_providers: list[str]
) -> None:
    rt = Runtime.build(make_settings(outbox_workers=4, outbox_poll_seconds=0.05))
    assert rt.settings.provider_budget == 2
    hanging = HttpRecorder().start()
    hanging.default("/hook", Reply(hang=HANG_GUARD_SECONDS))  # reads, never answers
    configure(rt, fake_slack, hanging, hanging_providers)
    channel = fake_slack.add_channel("team-sre")
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def notify(_rt: Runtime, item: OutboxItem) -> dict[str, Any]:
        with lock:
            for key, n in worker.in_use().items():
                peak[key] = max(peak.get(key, 0), n)
        with rt.reading() as session:
            provider = rt.provider_by_name(session, item.provider_name or "")
        result = provider.send(
            make_notification(short_id=f"INC-{item.id:06d}"),
            Recipient(item.recipient_kind or "", item.recipient or ""),
            idempotency_key=item.idempotency_key,
        )
        return dict(result.data)

    worker = OutboxWorker(rt, steps={"notify": notify})
    with rt.transaction() as session:
        for name in hanging_providers:  # queued first: more than all the workers
            for n in range(8):
                store.enqueue(
                    session,
                    kind="notify",
                    idempotency_key=f"{name}-{n}",
                    provider_name=name,
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
                .filter(OutboxItem.provider_name.in_(hanging_providers))
                .order_by(OutboxItem.id)
                .all()
            )
        states = [row.state for row in hung]
        # Each hanging provider holds at most its budget; together at most 4 - 2 = 2.
        assert states.count("in_flight") == 2 and states.count("pending") == len(states) - 2
        assert len(hanging.requests_for("/hook")) == 2
        assert len(fake_slack.messages(channel)) == 5
        assert all(peak.get(f"provider:{name}", 0) <= 2 for name in hanging_providers)
    finally:
        hanging.stop()  # the hanging requests are answered; the worker drains
        worker.stop()
