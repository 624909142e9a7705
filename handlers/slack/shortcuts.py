"""The "Declare incident" message shortcut: the declare modal, pre-filled with the
message's text and a link back to it."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.runtime import Runtime
from handlers.slack.common import in_background
from handlers.slack.home import open_declare
from providers.text import slack_unescape

log = logging.getLogger(__name__)
TITLE_MAX = 150


def title_from(text: str) -> str:
    """The first non-empty line of a message, shortened for a title."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1] + "…"
    return ""


def permalink(client: WebClient, channel: str | None, ts: str | None) -> str | None:
    if not channel or not ts:
        return None
    try:
        response = client.chat_getPermalink(channel=channel, message_ts=ts)
    except Exception:  # the bot may not see that channel: declare without the link
        log.info("no permalink for %s/%s", channel, ts)
        return None
    link = response.get("permalink")
    return str(link) if link else None


def declare_from_message(rt: Runtime, client: WebClient, body: dict[str, Any]) -> None:
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    ts = body.get("message_ts") or message.get("ts")
    text = slack_unescape(str(message.get("text") or "")).strip()
    link = permalink(client, channel, ts)
    description = text
    if link:
        description = f"{text}\n\nFrom: {link}" if text else f"From: {link}"
    open_declare(
        rt,
        client,
        trigger_id=body["trigger_id"],
        user_id=(body.get("user") or {}).get("id"),
        channel_id=channel,
        via="shortcut",
        title=title_from(text),
        description=description,
    )


def register(app: App, rt: Runtime, background: Executor) -> None:
    def shortcut(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        in_background(background, declare_from_message, rt, client, body)

    # The literal callback id (== DECLARE_SHORTCUT_CALLBACK) keeps manifest.yml's test exact.
    app.shortcut("declare_from_message")(shortcut)
