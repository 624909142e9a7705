"""Events API listeners: 📌 reactions in war rooms (the App Home tab is in ``home``).

Bolt acknowledges events before running these listeners, and ``handlers.slack.app`` has
already dropped redeliveries (same ``event_id``); the flows are idempotent anyway.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App

from bot.flows import pins
from bot.flows.common import Actor
from bot.runtime import Runtime
from storage import catalog
from storage import incidents as incident_store

log = logging.getLogger(__name__)


def is_pin(rt: Runtime, event: dict[str, Any]) -> bool:
    wanted = rt.settings.slack_pin_emoji.strip(":")
    reaction = str(event.get("reaction") or "").split("::")[0]
    item = event.get("item") or {}
    return reaction == wanted and item.get("type") == "message" and bool(item.get("ts"))


def reaction_actor(rt: Runtime, user_id: str | None) -> Actor:
    label = user_id or "someone"
    if user_id:
        with rt.transaction() as session:
            person = catalog.get_person(session, ref=user_id)
            label = person.label if person else user_id
    return Actor(label=label, source="slack", slack_user_id=user_id, via="reaction")


def register(app: App, rt: Runtime, background: Executor) -> None:  # noqa: ARG001

    def reaction_added(event: dict[str, Any], body: dict[str, Any]) -> None:
        if not is_pin(rt, event):
            return
        item = event["item"]
        channel, ts = str(item.get("channel") or ""), str(item["ts"])
        actor = reaction_actor(rt, event.get("user"))
        with rt.transaction() as session:
            incident = incident_store.get_by_war_room(session, channel_id=channel)
            if incident is None:
                return
            recorded = pins.pin_message(
                session,
                incident=incident,
                channel=channel,
                ts=ts,
                author=event.get("item_user"),
                actor=actor,
                request_key=body.get("event_id"),
            )
        if recorded is not None:
            log.info(
                "Pinned message %s added to the timeline",
                ts,
                extra={"incident": incident.short_id},
            )
            rt.wake_outbox()

    def reaction_removed(event: dict[str, Any]) -> None:
        if not is_pin(rt, event):
            return
        item = event["item"]
        channel, ts = str(item.get("channel") or ""), str(item["ts"])
        with rt.transaction() as session:
            incident = incident_store.get_by_war_room(session, channel_id=channel)
            if incident is None:
                return
            removed = pins.unpin_message(session, incident=incident, channel=channel, ts=ts)
        if removed:
            rt.wake_outbox()

    app.event("reaction_added")(reaction_added)
    app.event("reaction_removed")(reaction_removed)
