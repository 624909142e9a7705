"""Helpers shared by the Slack listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_sdk import WebClient

from bot.access import Action
from bot.domain.actor import Actor
from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.runtime import Runtime
from providers.text import slack_escape

log = logging.getLogger(__name__)


def actor_from(body: dict[str, Any], via: str) -> Actor:
    user = body.get("user") or {}
    user_id = body.get("user_id") or user.get("id")
    name = body.get("user_name") or user.get("username") or user.get("name") or user_id or "someone"
    return Actor(
        label=str(name),
        source="slack",
        slack_user_id=str(user_id) if user_id else None,
        via=via,
        ref=f"slack:{user_id}" if user_id else None,
        request_id=body.get("trigger_id") or body.get("event_id"),
    )


def in_background(pool: Executor, func: Callable[..., Any], *args: Any) -> None:
    """Run Slack UI work after the ack without holding Bolt's listener threads."""

    def run() -> None:
        try:
            func(*args)
        except Exception:
            log.exception("background Slack call failed")

    pool.submit(run)


def require_allowed(
    rt: Runtime,
    actor: Actor,
    action: Action,
    *,
    ref: str | None = None,
    channel_id: str | None = None,
) -> str:
    """The short id of the incident, when ``actor`` may do ``action`` to it (before
    opening a modal for it). Raises NotFoundError / PermissionDeniedError."""
    return incidents.check(rt, actor=actor, action=action, ref=ref, channel_id=channel_id)


def error_text(exc: ImasError) -> str:
    """An error for Slack: its message carries user input (names, ids), so it is escaped."""
    return f":warning: {slack_escape(getattr(exc, 'message', str(exc)))}"


def dm(client: WebClient, user_id: str, text: str) -> None:
    client.chat_postMessage(channel=user_id, text=text)


def ephemeral(text: str) -> dict[str, Any]:
    """A ``respond`` payload visible only to the clicker, leaving the message as it is."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}
