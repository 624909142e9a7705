"""Buttons on incident messages: Acknowledge, Mitigate, Resolve, Change severity, Post
update, Join war room, Reopen, View incident."""

from __future__ import annotations

import json
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.access import Action
from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.runtime import Runtime
from handlers.slack.common import (
    actor_from,
    ephemeral,
    error_text,
    in_background,
    require_allowed,
)
from handlers.slack.views import RESOLVE_CALLBACK, SEVERITY_CALLBACK, UPDATE_CALLBACK
from providers.base import SEVERITY_EMOJI
from providers.slack_blocks import ACTION_IDS, SEVERITY_CHOICES, option, plain
from providers.text import channel_ref, slack_fit


def _modal(
    callback: str,
    title: str,
    short_id: str,
    blocks: list[dict[str, Any]],
    submit: str = "Submit",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if context:
        blocks = [incident_context_block(context), *blocks]
    return {
        "type": "modal",
        "callback_id": callback,
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"incident": short_id}),
        "blocks": blocks,
    }


def incident_context_block(data: dict[str, Any]) -> dict[str, Any]:
    """What the form is about: the incident's id, title, severity and status (escaped)."""
    return {
        "type": "section",
        "block_id": "context",
        "text": {
            "type": "mrkdwn",
            "text": slack_fit(
                f"*{data['short_id']}* {data['title']}\n{data['severity']} · {data['status']}"
                f" · {data['service']}",
                3000,
            ),
        },
    }


def resolve_modal(short_id: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolve form: the summary, and what happens next (the war room is archived
    later, the LID and every announcement are updated, the people told are told again)."""
    return _modal(
        RESOLVE_CALLBACK,
        f"Resolve {short_id}",
        short_id,
        submit="Resolve incident",
        context=context,
        blocks=[
            {
                "type": "input",
                "block_id": "summary",
                "label": plain("Resolution summary", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "summary",
                    "multiline": True,
                    "max_length": 3000,
                },
            },
            {
                "type": "context",
                "block_id": "what_next",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "Resolving updates the announcements, the pinned summary and "
                        "the LID, tells everyone who was notified, and archives the war room "
                        "later.",
                    }
                ],
            },
        ],
    )


def update_modal(short_id: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return _modal(
        UPDATE_CALLBACK,
        "Status update",
        short_id,
        submit="Post update",
        context=context,
        blocks=[
            {
                "type": "input",
                "block_id": "status_text",
                "label": plain("Current status", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "status_text",
                    "multiline": True,
                },
            },
            {
                "type": "input",
                "block_id": "impact",
                "optional": True,
                "label": plain("Impact", 2000),
                "element": {"type": "plain_text_input", "action_id": "impact"},
            },
            {
                "type": "input",
                "block_id": "next_update",
                "optional": True,
                "label": plain("Next update in (minutes)", 2000),
                "element": {"type": "plain_text_input", "action_id": "next_update"},
            },
        ],
    )


def severity_modal(short_id: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The severity form, the current severity pre-selected, with an optional reason."""
    current = (context or {}).get("severity")
    choices = [option(f"{SEVERITY_EMOJI[s]} {s}", s) for s in SEVERITY_CHOICES]
    select: dict[str, Any] = {
        "type": "static_select",
        "action_id": "severity",
        "options": choices,
    }
    chosen = [o for o in choices if o["value"] == current]
    if chosen:
        select["initial_option"] = chosen[0]
    return _modal(
        SEVERITY_CALLBACK,
        "Change severity",
        short_id,
        submit="Change severity",
        context=context,
        blocks=[
            {
                "type": "input",
                "block_id": "severity",
                "label": plain("New severity", 2000),
                "element": select,
            },
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": plain("Why (goes to the timeline)", 2000),
                "element": {"type": "plain_text_input", "action_id": "reason", "max_length": 500},
            },
        ],
    )


def register(app: App, rt: Runtime, background: Executor) -> None:
    def status_button(status: str) -> Any:
        def handle(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            ack()
            try:
                incidents.set_status(
                    rt,
                    actor=actor_from(body, "button"),
                    status=status,
                    ref=body["actions"][0].get("value", ""),
                )
            except ImasError as exc:
                in_background(background, respond, ephemeral(error_text(exc)))

        return handle

    app.action(ACTION_IDS["ack"])(status_button("ACKNOWLEDGED"))
    app.action(ACTION_IDS["mitigate"])(status_button("MITIGATED"))
    app.action(ACTION_IDS["reopen"])(status_button("TRIGGERED"))

    def modal_button(builder: Any, action: Action) -> Any:
        def handle(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
            ack()
            actor = actor_from(body, "button")
            try:
                short_id = require_allowed(
                    rt, actor, action, ref=body["actions"][0].get("value", "")
                )
                context = incidents.show(rt, actor=actor, ref=short_id, detail=False)
            except ImasError as exc:
                in_background(background, respond, ephemeral(error_text(exc)))
                return
            in_background(
                background,
                lambda: client.views_open(
                    trigger_id=body["trigger_id"], view=builder(short_id, context)
                ),
            )

        return handle

    app.action(ACTION_IDS["resolve"])(modal_button(resolve_modal, Action.RESOLVE))
    app.action(ACTION_IDS["update"])(modal_button(update_modal, Action.UPDATE))
    app.action(ACTION_IDS["severity"])(modal_button(severity_modal, Action.SEVERITY))

    @app.action(ACTION_IDS["view"])
    def view_link(ack: Ack) -> None:
        ack()  # a URL button: Slack opens the link; the click must still be acknowledged

    @app.action(ACTION_IDS["join"])
    def join(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        user_id = (body.get("user") or {}).get("id")
        try:
            channel = incidents.war_room(
                rt, actor=actor_from(body, "button"), ref=body["actions"][0].get("value", "")
            )
        except ImasError as exc:
            in_background(background, respond, ephemeral(error_text(exc)))
            return

        def invite() -> None:
            if not channel:
                respond(ephemeral("This incident has no war room yet."))
                return
            try:
                client.conversations_invite(channel=channel, users=user_id)
            except Exception as exc:
                code = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
                if code != "already_in_channel":
                    raise
            respond(ephemeral(f"You are in {channel_ref(channel)}."))

        in_background(background, invite)
