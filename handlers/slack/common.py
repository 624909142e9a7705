"""Helpers shared by the Slack listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_sdk import WebClient

from bot.domain.errors import ImasError, InputError
from bot.flows.common import Actor
from bot.runtime import Runtime
from storage import incidents as incident_store
from storage.models import Incident

log = logging.getLogger(__name__)


def actor_from(body: dict[str, Any], via: str) -> Actor:
    user = body.get("user") or {}
    user_id = body.get("user_id") or user.get("id")
    name = body.get("user_name") or user.get("username") or user.get("name") or user_id or "someone"
    return Actor(
        label=str(name), source="slack", slack_user_id=str(user_id) if user_id else None, via=via
    )


def in_background(pool: Executor, func: Callable[..., Any], *args: Any) -> None:
    """Run Slack UI work after the ack without holding Bolt's listener threads."""

    def run() -> None:
        try:
            func(*args)
        except Exception:
            log.exception("background Slack call failed")

    pool.submit(run)


def find_incident(rt: Runtime, *, ref: str | None, channel_id: str | None) -> Incident:
    """The incident named by ``ref``, else the one whose war room is ``channel_id``."""
    with rt.transaction() as session:
        incident = None
        if ref:
            incident = incident_store.get_incident(session, ref=ref)
            if incident is None:
                raise InputError(f"No incident {ref}.")
        elif channel_id:
            incident = incident_store.get_by_war_room(session, channel_id=channel_id)
        if incident is None:
            raise InputError(
                "Which incident? Run this in its war room or add its id, e.g. `INC-A1B2C3`."
            )
        return incident


def error_text(exc: ImasError) -> str:
    return f":warning: {getattr(exc, 'message', str(exc))}"


def dm(client: WebClient, user_id: str, text: str) -> None:
    client.chat_postMessage(channel=user_id, text=text)


def ephemeral(text: str) -> dict[str, Any]:
    """A ``respond`` payload visible only to the clicker, leaving the message as it is."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}
