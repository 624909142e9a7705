"""The one access policy: who may see an incident, and who may do what to it.

Every door (Slack commands, buttons, modals and App Home; REST; the HTML pages; the CLI;
webhooks and the scheduler) reaches incidents through flows, and every flow asks here.

Rules:

* An actor has an access role (viewer < responder < manager < admin). API tokens and users
  carry theirs; the CLI's local operator and IMAS itself are admins; a Slack user's role is
  looked up in the configuration's ``permissions:`` section (``people:`` by Slack user id
  or e-mail), else ``responder`` for a member of a configured team, else
  ``slack_default_role`` (default ``responder``: any workspace member may declare and
  respond, as Slack users expect).
* A public incident is visible to every actor. A private incident is visible to the people
  involved in it (lead, declarer, role holders, the people IMAS invited to its war room, the
  owning team's on-call) and to managers and admins; to anyone else it does not exist
  (``NotFoundError``, the same answer as for an unknown id, so its existence does not leak).
* Each action needs a minimum role (``DEFAULT_MIN_ROLE``, overridable per action in
  ``permissions.actions``); a lower role gets ``PermissionDeniedError`` naming the role
  needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.domain.actor import Actor, Door
from bot.domain.enums import AccessRole, parse_access_role
from bot.domain.errors import ImasError, NotFoundError, PermissionDeniedError
from storage import catalog
from storage import incidents as incident_store
from storage.models import Incident, Person

PERMISSIONS_KEY = "permissions"


class Action(StrEnum):
    """What an actor may ask of an incident (the names used in ``permissions.actions``)."""

    VIEW = "view"
    DECLARE = "declare"
    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    SEVERITY = "severity"
    NOTE = "note"
    UPDATE = "update"
    EDIT = "edit"
    ROLE = "role"
    PAGE = "page"
    REPAIR = "repair"
    PIN = "pin"
    JOIN = "join"
    SNOOZE = "snooze"
    ONCALL = "oncall"  # override an on-call schedule (bot.flows.oncall)


DEFAULT_MIN_ROLE: dict[Action, AccessRole] = {
    Action.VIEW: AccessRole.VIEWER,
    Action.DECLARE: AccessRole.RESPONDER,
    Action.ACKNOWLEDGE: AccessRole.RESPONDER,
    Action.MITIGATE: AccessRole.RESPONDER,
    Action.RESOLVE: AccessRole.RESPONDER,
    Action.REOPEN: AccessRole.MANAGER,
    Action.SEVERITY: AccessRole.RESPONDER,
    Action.NOTE: AccessRole.RESPONDER,
    Action.UPDATE: AccessRole.RESPONDER,
    Action.EDIT: AccessRole.RESPONDER,
    Action.ROLE: AccessRole.RESPONDER,
    Action.PAGE: AccessRole.RESPONDER,
    Action.REPAIR: AccessRole.RESPONDER,
    Action.PIN: AccessRole.RESPONDER,
    Action.JOIN: AccessRole.VIEWER,
    Action.SNOOZE: AccessRole.RESPONDER,
    Action.ONCALL: AccessRole.RESPONDER,
}
# Actions that change nothing: their denials are not audited.
READ_ACTIONS = frozenset({Action.VIEW})

VERB = {
    Action.VIEW: "viewing incidents",
    Action.DECLARE: "declaring incidents",
    Action.ACKNOWLEDGE: "acknowledging",
    Action.MITIGATE: "marking an incident mitigated",
    Action.RESOLVE: "resolving",
    Action.REOPEN: "reopening",
    Action.SEVERITY: "changing the severity",
    Action.NOTE: "adding notes",
    Action.UPDATE: "posting status updates",
    Action.EDIT: "editing an incident",
    Action.ROLE: "assigning roles",
    Action.PAGE: "paging people",
    Action.REPAIR: "repairing an incident",
    Action.PIN: "pinning messages",
    Action.JOIN: "joining the war room",
    Action.SNOOZE: "snoozing reminders",
    Action.ONCALL: "overriding on-call schedules",
}


@dataclass(frozen=True)
class Policy:
    """The ``permissions:`` section of the configuration, parsed."""

    slack_default_role: AccessRole = AccessRole.RESPONDER
    people: dict[str, AccessRole] = field(default_factory=dict)  # lower-case ref → role
    min_role: dict[Action, AccessRole] = field(default_factory=lambda: dict(DEFAULT_MIN_ROLE))

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> Policy:
        """Build from the stored section (validated at ``imas config apply``)."""
        people = {
            str(ref).strip().lower(): parse_access_role(role)
            for ref, role in (raw.get("people") or {}).items()
        }
        min_role = dict(DEFAULT_MIN_ROLE)
        for name, role in (raw.get("actions") or {}).items():
            min_role[Action(str(name))] = parse_access_role(role)
        default = parse_access_role(raw.get("slack_default_role") or AccessRole.RESPONDER)
        return cls(slack_default_role=default, people=people, min_role=min_role)


def load_policy(session: Session) -> Policy:
    return Policy.from_config(catalog.get_app_setting(session, key=PERMISSIONS_KEY))


def person_of(session: Session, actor: Actor) -> Person | None:
    """The person behind ``actor`` (created on first sight for Slack users and e-mails)."""
    if actor.slack_user_id:
        return catalog.ensure_person(
            session, ref=actor.slack_user_id, email=actor.email, display_name=actor.label
        )
    if actor.email:
        return catalog.ensure_person(session, ref=actor.email, display_name=actor.label)
    return None


def role_of(session: Session, actor: Actor, policy: Policy | None = None) -> AccessRole:
    """The actor's access role: the door's when it has one, else from the configuration."""
    if actor.role is not None:
        return actor.role
    if actor.door in (Door.CLI, Door.SYSTEM, Door.PYTHON, Door.WEBHOOK):
        return AccessRole.ADMIN
    policy = policy or load_policy(session)
    person = catalog.get_person(session, ref=actor.slack_user_id) if actor.slack_user_id else None
    refs = [actor.slack_user_id, actor.email, person.email if person else None]
    for ref in refs:
        if ref and ref.lower() in policy.people:
            return policy.people[ref.lower()]
    if person is not None and catalog.is_team_member(session, person_id=person.id):
        return max(policy.slack_default_role, AccessRole.RESPONDER, key=lambda r: r.rank)
    return policy.slack_default_role


def involved_person_ids(incident: Incident) -> set[int]:
    ids = {incident.lead_id, incident.declared_by_id} | {r.person_id for r in incident.roles}
    if incident.team is not None and incident.team.current_on_call_id is not None:
        ids.add(incident.team.current_on_call_id)
    return {i for i in ids if i is not None}


def war_room_invitees(session: Session, incident: Incident) -> set[str]:
    """Slack user ids IMAS invited to the incident's war room (from its timeline)."""
    invited: set[str] = set()
    for event in incident_store.events_of_type(
        session, incident_id=incident.id, type="WAR_ROOM_CREATED"
    ):
        invited.update(str(u) for u in (event.data or {}).get("invited") or [])
    return invited


def known_person(session: Session, actor: Actor) -> Person | None:
    """The person behind ``actor`` if IMAS knows them (by Slack user id, else e-mail);
    unlike ``person_of``, creates nothing (reads stay reads)."""
    if actor.slack_user_id:
        return catalog.get_person(session, ref=actor.slack_user_id)
    if actor.email:
        return catalog.get_person(session, ref=actor.email)
    return None


def is_involved(session: Session, actor: Actor, incident: Incident) -> bool:
    person = known_person(session, actor)
    if person is not None and person.id in involved_person_ids(incident):
        return True
    return bool(actor.slack_user_id) and actor.slack_user_id in war_room_invitees(session, incident)


def can_see(session: Session, actor: Actor, incident: Incident, role: AccessRole) -> bool:
    if not incident.private:
        return True
    return role.at_least(AccessRole.MANAGER) or is_involved(session, actor, incident)


@dataclass(frozen=True)
class Visibility:
    """How a list of incidents is filtered for one actor (see ``visible``)."""

    role: AccessRole
    all_private: bool
    person_id: int | None
    slack_user_id: str | None


def visibility(session: Session, actor: Actor) -> Visibility:
    role = role_of(session, actor)
    person = known_person(session, actor)
    return Visibility(
        role=role,
        all_private=role.at_least(AccessRole.MANAGER),
        person_id=person.id if person else None,
        slack_user_id=actor.slack_user_id,
    )


def visible(session: Session, seen: Visibility, incidents: Iterable[Incident]) -> list[Incident]:
    """The incidents of ``incidents`` that the actor behind ``seen`` may see, in order."""
    kept = []
    for incident in incidents:
        if not incident.private or seen.all_private:
            kept.append(incident)
        elif seen.person_id is not None and seen.person_id in involved_person_ids(incident):
            kept.append(incident)
        elif seen.slack_user_id and seen.slack_user_id in war_room_invitees(session, incident):
            kept.append(incident)
    return kept


class Denial(Exception):  # noqa: N818 - carried out of the flow's rolled-back transaction
    """Raised inside a flow's transaction so it rolls back; the flow then audits the
    denial in a transaction of its own and raises ``error``."""

    def __init__(self, error: ImasError, action: Action, role: AccessRole) -> None:
        super().__init__(str(error))
        self.error = error  # PermissionDeniedError, or NotFoundError for a hidden incident
        self.action = action
        self.role = role

    @property
    def reason(self) -> str:
        """For the audit log (admins only): why, even when the actor was told "not found"."""
        if isinstance(self.error, NotFoundError):
            return f"not visible to a {self.role.value} who is not involved"
        return str(self.error)


def require(
    session: Session, actor: Actor, action: Action, incident: Incident | None, *, ref: object = None
) -> AccessRole:
    """Check that ``actor`` may do ``action`` (to ``incident`` when given). Returns the
    actor's role. Raises ``Denial`` wrapping ``NotFoundError`` for an incident the actor may
    not see (the same message as an unknown id) or ``PermissionDeniedError`` for a role too
    low; the flow audits write attempts and raises the wrapped error."""
    policy = load_policy(session)
    role = role_of(session, actor, policy)
    if incident is not None and not can_see(session, actor, incident, role):
        shown = ref if ref is not None and str(ref).strip() else incident.short_id
        raise Denial(NotFoundError(f"No incident {shown}."), action, role)
    needed = policy.min_role[action]
    if not role.at_least(needed):
        raise Denial(
            PermissionDeniedError(
                f"{VERB[action].capitalize()} needs the {needed.value} role; "
                f"you have {role.value}. Ask an IMAS admin (permissions: in the config file)."
            ),
            action,
            role,
        )
    return role


def allowed_actions(session: Session, actor: Actor, incident: Incident) -> set[Action]:
    """Every action ``actor`` may take on ``incident`` (for rendering only the allowed ones)."""
    policy = load_policy(session)
    role = role_of(session, actor, policy)
    if not can_see(session, actor, incident, role):
        return set()
    return {action for action, needed in policy.min_role.items() if role.at_least(needed)}
