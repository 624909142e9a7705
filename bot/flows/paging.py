"""People: paging a team's on-call or a person, telling a role holder what the role is.

Everything goes through the outbox (router ``page`` / ``escalated`` events, ``notify``
rows, ``slack_post`` DMs) in the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain.actor import Actor
from bot.domain.errors import InputError, NotFoundError
from bot.flows.oncall import current_for_team
from bot.flows.slack_steps import enqueue_post
from bot.presenter import view_of
from bot.router import enqueue_notification, route_event
from bot.runtime import Runtime
from providers.base import Recipient
from providers.slack_blocks import role_dm_text
from storage import catalog
from storage import incidents as incident_store
from storage.models import Incident, Person, Team, TimelineEvent


def person_address(person: Person) -> str | None:
    """What the Slack provider needs to DM ``person``: a user id, else an e-mail."""
    return person.slack_user_id or person.email


def notify_person(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    person_ref: str,
    event: str,
    event_key: str,
    text: str | None,
    actor: str | None,
) -> str:
    """Enqueue one ``event`` notification to one person by Slack DM (the router's row
    shape, so delivery, timeline ``ALERT_SENT`` and de-duplication are the same).
    Returns the person's label."""
    person = catalog.ensure_person(session, ref=person_ref)
    address = person_address(person)
    slack = rt.primary_slack(session)
    if slack is None or not address:
        return person.label
    enqueue_notification(
        session,
        incident=incident,
        event=event,
        event_key=event_key,
        provider_name=slack.name,
        recipient=Recipient("user", address),
        text=text,
        actor=actor,
    )
    return person.label


def find_team(session: Session, name: str) -> Team | None:
    return session.scalar(select(Team).where(func.lower(Team.name) == name.strip().lower()))


def page(
    session: Session,
    rt: Runtime,
    *,
    incident: Incident,
    target: str,
    actor: Actor,
    reason: str | None = None,
) -> TimelineEvent:
    """Page ``target`` for ``incident``: a team name (its current on-call) or a person
    (Slack user id or e-mail). Paging the incident's own team routes the ``page`` event
    to every matching provider (pagers included); anyone else gets a DM.
    Records ``ESCALATION``; each delivery then records ``ALERT_SENT``."""
    target = target.strip()
    if not target:
        raise InputError("Page whom? `/incident page <team|@user>`", field="target")
    team = find_team(session, target)
    text = reason or f"Paged by {actor.label}"
    if team is not None:
        on_call = current_for_team(session, team, rt.clock())
        if on_call is None:
            raise NotFoundError(f"Team {team.name} has nobody on call.", field="target")
        who = f"{on_call.label} (on call for {team.name})"
        data = {"team": team.name, "person": on_call.label}
    elif catalog.looks_like_slack_user(target) or "@" in target:
        on_call = catalog.ensure_person(session, ref=target)
        who, data = on_call.label, {"person": on_call.label}
    else:
        raise NotFoundError(f"No team named {target!r}; page a person with @name.", field="target")
    event = incident_store.add_event(
        session,
        incident=incident,
        type="ESCALATION",
        message=f"{actor.label} paged {who}",
        actor=actor.label,
        source=actor.origin,
        data={**data, "page": True},
    )
    assert event is not None
    key = f"page:{event.id}"
    if team is not None and team.id == incident.team_id:
        route_event(
            session,
            rt,
            incident=incident,
            event="page",
            event_key=key,
            text=text,
            actor=actor.label,
        )
    else:
        address = person_address(on_call)
        if address is None:
            raise InputError(f"{on_call.label} has no Slack user or e-mail to page.")
        notify_person(
            session,
            rt,
            incident=incident,
            person_ref=address,
            event="page",
            event_key=key,
            text=text,
            actor=actor.label,
        )
    return event


def role_dm(
    session: Session, rt: Runtime, *, incident: Incident, event: TimelineEvent, help_text: str
) -> None:
    """DM the new holder of a role what it is about (from a ``ROLE_ASSIGNED`` event)."""
    data = event.data or {}
    ref = str(data.get("person") or "")
    if not ref:
        return
    person = catalog.get_person(session, ref=ref)
    address = person_address(person) if person else ref
    if not address:
        return
    view = view_of(session, rt, incident)
    enqueue_post(
        session,
        incident=incident,
        key=f"role_dm:{event.id}",
        user=address,
        text=role_dm_text(view, str(data.get("role")), help_text, event.actor or "Someone"),
    )
