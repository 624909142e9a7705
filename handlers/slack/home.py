"""The App Home tab: open incidents, the user's first, and a Declare button.

Private incidents appear only to the people involved in them (lead, declarer, role
holders, the owner team's on-call).
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.presenter import view_of
from bot.runtime import Runtime
from handlers.slack.common import in_background
from providers.base import IncidentView
from providers.slack_blocks import HOME_DECLARE_ACTION, declare_modal, home_view
from storage import catalog
from storage import incidents as incident_store
from storage.incidents import IncidentFilter
from storage.models import Incident, Person

MAX_LISTED = 60


def involves(incident: Incident, person: Person | None) -> bool:
    if person is None:
        return False
    if person.id in (incident.lead_id, incident.declared_by_id):
        return True
    if any(role.person_id == person.id for role in incident.roles):
        return True
    return incident.team is not None and incident.team.current_on_call_id == person.id


def home_incidents(rt: Runtime, user_id: str) -> tuple[list[IncidentView], list[IncidentView]]:
    """(the user's open incidents, the other open incidents they may see)."""
    with rt.transaction() as session:
        me = catalog.get_person(session, ref=user_id)
        _total, rows = incident_store.list_incidents(
            session, filters=IncidentFilter(open_only=True), limit=200
        )
        mine: list[IncidentView] = []
        others: list[IncidentView] = []
        for incident in rows:
            involved = involves(incident, me)
            if incident.private and not involved:
                continue
            target = mine if involved else others
            if len(mine) + len(others) < MAX_LISTED:
                target.append(view_of(session, rt, incident))
        return mine, others


def build_home(rt: Runtime, user_id: str) -> dict[str, Any]:
    mine, others = home_incidents(rt, user_id)
    return home_view(mine, others)


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
    with rt.transaction() as session:
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
