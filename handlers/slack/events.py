"""Events API listeners: 📌 reactions in war rooms (the App Home tab is in ``home``).

Bolt acknowledges events before running these listeners, and ``handlers.slack.app`` has
already dropped redeliveries (same ``event_id``); the flows are idempotent anyway.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App

from bot.domain.actor import Actor
from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def is_pin(rt: Runtime, event: dict[str, Any]) -> bool:
    wanted = rt.settings.slack_pin_emoji.strip(":")
    reaction = str(event.get("reaction") or "").split("::")[0]
    item = event.get("item") or {}
    return reaction == wanted and item.get("type") == "message" and bool(item.get("ts"))


def reaction_actor(event: dict[str, Any], body: dict[str, Any]) -> Actor:
    user_id = event.get("user")
    return Actor(
        label=str(user_id or "someone"),
        source="slack",
        slack_user_id=str(user_id) if user_id else None,
        via="reaction",
        ref=f"slack:{user_id}" if user_id else None,
        request_id=body.get("event_id"),
    )


def register(app: App, rt: Runtime, background: Executor) -> None:  # noqa: ARG001
    def reaction_added(event: dict[str, Any], body: dict[str, Any]) -> None:
        if not is_pin(rt, event):
            return
        item = event["item"]
        channel, ts = str(item.get("channel") or ""), str(item["ts"])
        try:
            outcome = incidents.pin(
                rt,
                actor=reaction_actor(event, body),
                channel_id=channel,
                ts=ts,
                author=event.get("item_user"),
                request_key=body.get("event_id"),
            )
        except ImasError as exc:  # e.g. a viewer's 📌: nothing to answer to
            log.info("📌 in %s not recorded: %s", channel, exc)
            return
        if outcome is not None and outcome.data is not None:
            log.info(
                "Pinned message %s added to the timeline",
                ts,
                extra={"incident": outcome.incident["short_id"]},
            )

    def reaction_removed(event: dict[str, Any], body: dict[str, Any]) -> None:
        if not is_pin(rt, event):
            return
        item = event["item"]
        channel, ts = str(item.get("channel") or ""), str(item["ts"])
        try:
            incidents.unpin(rt, actor=reaction_actor(event, body), channel_id=channel, ts=ts)
        except ImasError as exc:
            log.info("📌 removal in %s not recorded: %s", channel, exc)

    app.event("reaction_added")(reaction_added)
    app.event("reaction_removed")(reaction_removed)
