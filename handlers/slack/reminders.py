"""The Snooze buttons of status-update reminders."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.runtime import Runtime
from handlers.slack.common import actor_from, ephemeral, error_text, in_background
from providers.slack_blocks import SNOOZE_MINUTES, snooze_action_id
from providers.text import is_slack_user_id, mention_user, slack_escape


def register(app: App, rt: Runtime, background: Executor) -> None:
    def snooze_button(minutes: int) -> Any:
        def handle(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            short_id = body["actions"][0].get("value", "")
            actor = actor_from(body, "button")
            try:
                due = incidents.snooze(rt, actor=actor, minutes=minutes, ref=short_id).data
            except ImasError as exc:
                ack()
                in_background(
                    background,
                    respond,
                    ephemeral(error_text(exc)),
                )
                return
            ack()
            user = actor.slack_user_id
            who = (
                mention_user(user) if user and is_slack_user_id(user) else slack_escape(actor.label)
            )
            text = (
                f"⏰ Status-update reminder for {slack_escape(short_id)} snoozed for {minutes} min by {who} "
                f"(next one at {due:%H:%M} UTC)."
            )
            in_background(background, respond, {"replace_original": True, "text": text})

        return handle

    for minutes in SNOOZE_MINUTES:
        app.action(snooze_action_id(minutes))(snooze_button(minutes))
