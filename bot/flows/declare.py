"""Declaring an incident (SPEC §4): one transaction writes the incident, its first
timeline event and one outbox row per orchestration step; the steps run later.

Idempotent: with an ``idempotency_key`` (a Slack view id, an alert group: keys IMAS makes
itself), declaring twice returns the first incident and enqueues nothing. A ``caller_key``
(an API ``Idempotency-Key`` header: a key the caller chose) is scoped to the caller: the
same caller gets its first incident back, another caller using the same key gets a
``ConflictError`` and never sees the first caller's incident.

The access policy applies (``declare`` needs the responder role); each declaration writes
one audit row in its transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot import access, audit
from bot.domain.actor import Actor
from bot.domain.enums import parse_severity
from bot.domain.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from bot.domain.text import text_problem
from bot.faults import crash_point
from bot.flows import lid, scheduled
from bot.outbox_kinds import OutboxKind, lid_key, war_room_key
from bot.router import route_event
from bot.runtime import Runtime
from storage import catalog
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.db import is_transient
from storage.models import ImpactScope, Incident

log = logging.getLogger(__name__)

DEFAULT_WAR_ROOM_SEVERITIES = ("SEV1_CRITICAL", "SEV2_HIGH")
TITLE_MAX = 200


@dataclass
class DeclareInput:
    title: str
    service: str | int
    severity: str
    description: str = ""
    scopes: list[str] = field(default_factory=list)
    lead: str | None = None  # e-mail or Slack user id; default: the declarer
    private: bool = False
    detected_at: datetime | None = None


def validate(data: DeclareInput) -> dict[str, str]:
    """Field -> message for everything wrong with ``data`` that needs no database."""
    errors: dict[str, str] = {}
    title = (data.title or "").strip()
    if not title:
        errors["title"] = "A title is required."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"The title must be at most {TITLE_MAX} characters."
    elif problem := text_problem(title, "title"):
        errors["title"] = problem
    try:
        parse_severity(data.severity)
    except InputError as exc:
        errors["severity"] = exc.message
    if data.service in (None, ""):
        errors["service"] = "A service is required."
    if len(data.description or "") > 10000:
        errors["description"] = "The description must be at most 10000 characters."
    elif problem := text_problem(data.description, "description", multiline=True):
        errors["description"] = problem
    return errors


def war_room_severities(session: Session) -> tuple[str, ...]:
    configured = catalog.get_app_setting(session, key="war_room").get("severities")
    return tuple(configured) if configured else DEFAULT_WAR_ROOM_SEVERITIES


CALLER_KEY_SEPARATOR = "\x1f"  # never in a caller's key (control characters are refused)


def scoped_key(caller_key: str, actor: Actor) -> str:
    """The stored idempotency key of ``caller_key`` sent by ``actor``."""
    return f"api:{caller_key}{CALLER_KEY_SEPARATOR}{actor.identity}"


def check_caller_key(session: Session, *, caller_key: str, actor: Actor) -> str:
    """The scoped key; ConflictError when another caller already used ``caller_key``."""
    if not caller_key or any(ord(c) < 32 or ord(c) == 127 for c in caller_key):
        raise InputError("Idempotency-Key must be printable characters.", field="Idempotency-Key")
    key = scoped_key(caller_key, actor)
    other = incident_store.idempotency_key_owned_by_other(
        session, prefix=f"api:{caller_key}{CALLER_KEY_SEPARATOR}", key=key
    )
    if other:
        raise ConflictError(
            "This Idempotency-Key was already used by another caller: choose a key of your own "
            "(a UUID, for example).",
            field="Idempotency-Key",
        )
    return key


def declare_incident(
    session: Session,
    rt: Runtime,
    *,
    data: DeclareInput,
    actor: Actor,
    idempotency_key: str | None = None,
) -> tuple[Incident, bool]:
    """Create the incident and enqueue its orchestration in ``session``'s transaction.

    Returns ``(incident, created)``; ``created`` is False when ``idempotency_key`` was
    seen before. Raises InputError (with ``field``) / NotFoundError for bad input, before
    writing anything. May raise IntegrityError on a concurrent duplicate key (``declare``
    handles it).
    """
    try:
        access.require(session, actor, access.Action.DECLARE, None)
    except access.Denial as denial:
        raise denial.error from None
    if idempotency_key:
        existing = incident_store.get_by_idempotency_key(session, key=idempotency_key)
        if existing is not None:
            return existing, False
    errors = validate(data)
    if errors:
        name, message = next(iter(errors.items()))
        raise InputError(message, field=name)
    service = catalog.get_service(session, ref=data.service)
    if service is None:
        raise NotFoundError(f"Unknown service {data.service!r}.", field="service")
    if not service.is_active:
        raise InputError(f"Service {service.name!r} is inactive.", field="service")
    scopes: list[ImpactScope] = []
    for name in data.scopes:
        scope = catalog.get_scope(session, name=name)
        if scope is None:
            raise NotFoundError(f"Unknown impact scope {name!r}.", field="scopes")
        scopes.append(scope)

    declarer = access.person_of(session, actor)
    lead = catalog.ensure_person(session, ref=data.lead) if data.lead else declarer
    incident = Incident(
        title=data.title.strip(),
        description=(data.description or "").strip(),
        service_id=service.id,
        team_id=service.owner_team_id,
        severity=parse_severity(data.severity).value,
        status="TRIGGERED",
        private=data.private,
        source=actor.source,
        idempotency_key=idempotency_key,
        lead_id=lead.id if lead else None,
        declared_by_id=declarer.id if declarer else None,
        detected_at=data.detected_at,
    )
    incident.scopes = scopes
    incident_store.insert_incident(session, incident=incident)
    session.refresh(incident)
    incident_store.add_event(
        session,
        incident=incident,
        type="STATUS_CHANGE",
        message=f"Incident declared by {actor.label} ({incident.severity}, TRIGGERED)",
        actor=actor.label,
        source=actor.origin,
    )
    for scope in scopes:
        incident_store.add_event(
            session,
            incident=incident,
            type="SCOPE_ADDED",
            message=f"Impact scope {scope.name} added",
            actor=actor.label,
            source=actor.origin,
        )
    enqueue_orchestration(session, rt, incident=incident, actor=actor)
    audit.record(
        session,
        actor,
        action="incident.declare",
        target_type="incident",
        target=incident.short_id,
        changes={
            "title": [None, incident.title],
            "severity": [None, incident.severity],
            "status": [None, incident.status],
            "private": [None, incident.private],
        },
    )
    return incident, True


def enqueue_orchestration(
    session: Session, rt: Runtime, *, incident: Incident, actor: Actor
) -> None:
    """Enqueue every orchestration step not yet enqueued (idempotent; used by repair)."""
    if rt.settings.google_enabled:
        outbox_store.enqueue(
            session,
            kind=OutboxKind.LID,
            idempotency_key=lid_key(incident.id),
            incident_id=incident.id,
        )
        lid.enqueue_shares(session, rt, incident=incident)
    slack_available = (
        rt.settings.slack_bot_token is not None or rt.primary_slack(session) is not None
    )
    if incident.severity in war_room_severities(session) and slack_available:
        outbox_store.enqueue(
            session,
            kind=OutboxKind.WAR_ROOM,
            idempotency_key=war_room_key(incident.id),
            incident_id=incident.id,
        )
    route_event(
        session, rt, incident=incident, event="created", event_key="created", actor=actor.label
    )
    scheduled.sync_tasks(session, rt, incident=incident)


def declare(
    rt: Runtime,
    *,
    data: DeclareInput,
    actor: Actor,
    idempotency_key: str | None = None,
    caller_key: str | None = None,
) -> tuple[Incident, bool]:
    """Declare in its own transaction, commit, wake the outbox. Safe under concurrent
    duplicate submissions: the loser of a unique-key race returns the winner's incident.
    A denied declaration is audited (in a transaction of its own) and raises
    PermissionDeniedError."""
    if caller_key is not None:
        with rt.reading() as session:
            idempotency_key = check_caller_key(session, caller_key=caller_key, actor=actor)
    try:
        for attempt in range(4):
            try:
                with rt.transaction() as session:
                    incident, created = declare_incident(
                        session, rt, data=data, actor=actor, idempotency_key=idempotency_key
                    )
                    short_id, title = incident.short_id, incident.title
                break
            except OperationalError as exc:
                if attempt == 3 or not is_transient(exc):
                    raise
                log.warning(
                    "declaration hit a transient database error; retrying: %s", type(exc).__name__
                )
    except PermissionDeniedError as denied:
        audit.record_denial(
            rt,
            actor,
            action="incident.declare",
            target_type="incident",
            target=None,
            detail=str(denied),
        )
        raise
    except IntegrityError:
        if not idempotency_key:
            raise
        with rt.transaction() as session:
            found = incident_store.get_by_idempotency_key(session, key=idempotency_key)
            if found is None:
                raise
            return found, False
    crash_point("declare.committed", short_id)
    if created:
        log.info("Created incident %s: %s", short_id, title, extra={"incident": short_id})
        rt.wake_outbox()
    return incident, created
