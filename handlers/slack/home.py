"""The App Home tab: open incidents, the user's first, and a Declare button.

What a viewer sees is decided by the access policy (``bot.access``): private incidents
appear only to the people involved in them and to managers and admins.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.domain.actor import Actor
from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.runtime import Runtime
from handlers.slack import oncall as slack_oncall
from handlers.slack.common import in_background
from providers.slack_blocks import HOME_DECLARE_ACTION, declare_modal, home_view
from providers.text import slack_truncate
from storage import catalog

MAX_LISTED = 60


def build_home(rt: Runtime, user_id: str) -> dict[str, Any]:
    actor = Actor(label=user_id, source="slack", slack_user_id=user_id, via="home")
    mine, others = incidents.home_lists(rt, actor=actor, limit=MAX_LISTED)
    view = home_view(mine, others)
    # Who is on call now, per team (the schedule engine), at the end of the tab.
    try:
        oncall_text = slack_oncall.answer(rt, {"user_id": user_id}, "")
    except ImasError:
        return view
    view["blocks"] = [
        *view["blocks"][:97],
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_truncate(oncall_text, 3000)}},
    ]
    return view


def open_declare(
    rt: Runtime,
    client: WebClient,
    *,
    trigger_id: str,
    user_id: str | None,
    channel_id: str | None,
    via: str,
    title: str = "",
    description: str = "",
) -> None:
    """Open the declare modal (from Home or a shortcut), pre-filled when given."""
    with rt.reading() as session:
        services = [s.name for s in catalog.list_services(session, active_only=True)]
        scopes = [s.name for s in catalog.list_scopes(session)]
    if not services and user_id:
        client.chat_postMessage(
            channel=user_id,
            text="No service is configured yet: add one with `imas config apply FILE.yml`.",
        )
        return
    metadata = json.dumps({"channel_id": channel_id, "via": via})
    client.views_open(
        trigger_id=trigger_id,
        view=declare_modal(
            services=services,
            scopes=scopes,
            lead_user_id=user_id,
            private_metadata=metadata,
            title=title,
            description=description,
        ),
    )


def register(app: App, rt: Runtime, background: Executor) -> None:
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        user_id = str(event["user"])
        client.views_publish(user_id=user_id, view=build_home(rt, user_id))

    def declare_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = (body.get("user") or {}).get("id")
        in_background(
            background,
            lambda: open_declare(
                rt,
                client,
                trigger_id=body["trigger_id"],
                user_id=user_id,
                channel_id=None,
                via="home",
            ),
        )

    app.event("app_home_opened")(home_opened)
    app.action(HOME_DECLARE_ACTION)(declare_clicked)
