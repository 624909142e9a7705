"""The notification router: who must hear about an incident event.

For each event it computes recipients and enqueues one outbox row per recipient:

* the owner team's Slack channel, the impact scopes' Slack channels and every active
  SLACK provider's ``default_channel`` — de-duplicated, so a channel gets one
  announcement per incident (later events edit it and reply in its thread);
* the team's on-call person, by Slack DM, for created / escalated / page / resolved;
* the team's e-mail and the scopes' ``notify_emails`` through the first active EMAIL
  provider;
* every other active provider whose ``filters`` match (``min_severity``, ``events``,
  ``services``, ``teams``), at its own configured destination.

Private incidents are not announced in channels nor sent to broadcast providers
(DISCORD, TEAMS, NTFY); DMs, e-mail, SMS and pagers still fire.

Idempotent: the outbox key is ``notify:<incident>:<event_key>:<provider>:<recipient>``,
so routing the same event twice enqueues nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.flows.oncall import current_for_team
from bot.outbox_kinds import OutboxKind, notify_key
from bot.runtime import Runtime
from providers.base import SEVERITY_RANK, NotificationProvider, Recipient
from storage import catalog
from storage import outbox as outbox_store
from storage.models import Incident, NotificationProviderRow, OutboxItem

log = logging.getLogger(__name__)

ONCALL_DM_EVENTS = frozenset({"created", "escalated", "page", "resolved"})
BROADCAST_TYPES = frozenset({"DISCORD", "TEAMS", "NTFY"})


@dataclass(frozen=True)
class Route:
    provider: str
    recipient: Recipient


def filters_match(filters: dict[str, Any], incident: Incident, event: str) -> bool:
    """Whether a provider's ``filters`` admit this incident event."""
    min_severity = filters.get("min_severity")
    if min_severity and SEVERITY_RANK.get(incident.severity, 9) > SEVERITY_RANK.get(
        min_severity, 9
    ):
        return False
    events = filters.get("events")
    if events and event not in events:
        return False
    services = filters.get("services")
    if services and incident.service.name not in services:
        return False
    teams = filters.get("teams")
    return not (teams and (incident.team is None or incident.team.name not in teams))


def compute_routes(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    event: str,
    extra: list[Recipient] | None = None,
) -> list[Route]:
    routes: list[Route] = []
    seen: set[str] = set()

    def add(provider: NotificationProvider | None, recipient: Recipient) -> None:
        if provider is None or not recipient.address and recipient.kind != "default":
            return
        # A channel or a person is one recipient whichever provider would reach them.
        key = (
            recipient.key()
            if recipient.kind in ("channel", "user")
            else f"{provider.name}|{recipient.key()}"
        )
        if key in seen:
            return
        seen.add(key)
        routes.append(Route(provider.name, recipient))

    rows = catalog.list_providers(session, active_only=True)
    slack = rt.primary_slack(session)
    team = incident.team
    if not incident.private:
        if team and team.slack_channel_id:
            add(slack, Recipient("channel", team.slack_channel_id))
        for scope in incident.scopes:
            if scope.slack_channel_id:
                add(slack, Recipient("channel", scope.slack_channel_id))
    # The schedule engine (bot.flows.oncall), over the team's current_on_call.
    on_call = current_for_team(session, team, rt.clock()) if team else None
    if (
        event in ONCALL_DM_EVENTS
        and on_call is not None
        and (on_call.slack_user_id or on_call.email)
    ):
        # An e-mail address is resolved to the Slack user by the provider at send time.
        add(slack, Recipient("user", on_call.slack_user_id or on_call.email or ""))
    for recipient in extra or []:
        add(slack if recipient.kind in ("channel", "user") else None, recipient)

    email_row = next((row for row in rows if row.type == "EMAIL"), None)
    if email_row is not None:
        email = rt.provider(email_row)
        addresses = [team.email] if team and team.email else []
        for scope in incident.scopes:
            addresses.extend(scope.notify_emails or [])
        for address in addresses:
            add(email, Recipient("email", address))

    for row in rows:
        if not filters_match(row.filters or {}, incident, event):
            continue
        if incident.private and (row.type in BROADCAST_TYPES or row.type == "SLACK"):
            continue
        provider = _safe_provider(rt, row)
        if provider is None:
            continue
        for recipient in provider.default_recipients():
            add(provider, recipient)
    return routes


def _safe_provider(rt: Runtime, row: NotificationProviderRow) -> NotificationProvider | None:
    try:
        return rt.provider(row)
    except Exception:  # a broken provider must not stop the others; doctor reports it
        log.exception("provider %s cannot be built; skipped for this event", row.name)
        return None


def route_event(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    event: str,
    event_key: str,
    text: str | None = None,
    actor: str | None = None,
    extra: list[Recipient] | None = None,
) -> list[OutboxItem]:
    """Enqueue one ``notify`` outbox row per recipient of ``event``. Idempotent per
    ``event_key``. Returns the rows (existing ones included)."""
    return [
        enqueue_notification(
            session,
            incident=incident,
            event=event,
            event_key=event_key,
            provider_name=route.provider,
            recipient=route.recipient,
            text=text,
            actor=actor,
        )
        for route in compute_routes(session, rt, incident=incident, event=event, extra=extra)
    ]


def enqueue_notification(
    session: Session,
    *,
    incident: Incident,
    event: str,
    event_key: str,
    provider_name: str,
    recipient: Recipient,
    text: str | None = None,
    actor: str | None = None,
) -> OutboxItem:
    """The outbox row for one notification to one recipient (idempotent per key)."""
    return outbox_store.enqueue(
        session,
        kind=OutboxKind.NOTIFY,
        idempotency_key=notify_key(incident.id, event_key, provider_name, recipient.key()),
        incident_id=incident.id,
        event=event,
        provider_name=provider_name,
        recipient_kind=recipient.kind,
        recipient=recipient.address,
        payload={"text": text, "actor": actor},
    )
