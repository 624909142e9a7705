"""Incidents and their timeline. The caller owns the transaction."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from storage.models import (
    Incident,
    IncidentRole,
    Person,
    Service,
    Team,
    TimelineEvent,
    utcnow,
)


def new_short_id() -> str:
    """``INC-`` + 6 upper-case hex characters (16.7 M values; collisions are retried)."""
    return "INC-" + secrets.token_hex(3).upper()


def insert_incident(session: Session, *, incident: Incident, attempts: int = 8) -> Incident:
    """Insert ``incident`` with a fresh unique short id, retrying on a collision.

    Runs in a SAVEPOINT so a collision does not abort the caller's transaction. Raises
    IntegrityError for any other constraint (e.g. a repeated idempotency key).
    """
    for attempt in range(attempts):
        incident.short_id = new_short_id()
        try:
            with session.begin_nested():
                session.add(incident)
                session.flush()
            return incident
        except IntegrityError as exc:
            if "short_id" not in str(exc.orig) or attempt == attempts - 1:
                raise
            session.expunge(incident) if incident in session else None
    raise RuntimeError("unreachable")


def get_incident(session: Session, *, ref: str | int) -> Incident | None:
    """By numeric id or short id (``INC-A1B2C3``, case-insensitive). Anything else
    (ids beyond 64 bits, non-ASCII digits, very long strings) is simply not found."""
    if isinstance(ref, str):
        ref = ref.strip()
        if ref.isascii() and ref.isdigit():
            ref = int(ref) if len(ref) <= 19 else 0
    if isinstance(ref, int):
        return session.get(Incident, ref) if 0 < ref < 2**63 else None
    if len(ref) > 64 or not ref.isprintable():  # PostgreSQL refuses NUL in a text query
        return None
    return session.scalar(select(Incident).where(Incident.short_id == ref.upper()))


def get_by_idempotency_key(session: Session, *, key: str) -> Incident | None:
    return session.scalar(select(Incident).where(Incident.idempotency_key == key))


def idempotency_key_owned_by_other(session: Session, *, prefix: str, key: str) -> bool:
    """Whether an incident's key starts with ``prefix`` but is not ``key`` (another caller
    used the same caller-chosen key)."""
    found = session.scalar(
        select(Incident.id)
        .where(
            Incident.idempotency_key.startswith(prefix, autoescape=True),
            Incident.idempotency_key != key,
        )
        .limit(1)
    )
    return found is not None


def cast_result(result: Any) -> CursorResult[Any]:
    """An UPDATE's result (a ``CursorResult``, whose ``rowcount`` says how many matched)."""
    assert isinstance(result, CursorResult)
    return result


def swap_war_room_surface(
    session: Session, *, incident_id: int, field: str, old: Any, new: Any
) -> bool:
    """Record ``new`` as what IMAS last wrote to the war room's ``field`` (``war_room_topic``
    or ``war_room_bookmarks``) if it still holds ``old``. True: the caller won and must
    make the Slack call; False: another worker already wrote this value (or a newer one)."""
    column = getattr(Incident, field)
    current = column.is_(None) if old is None else column == old
    if field == "war_room_bookmarks":  # JSON does not compare in SQL: compare in Python
        row = session.get(Incident, incident_id, with_for_update=True)
        if row is None or row.war_room_bookmarks != old:
            return False
        row.war_room_bookmarks = new
        session.flush()
        return True
    result = session.execute(
        update(Incident).where(Incident.id == incident_id, current).values({field: new})
    )
    return bool(cast_result(result).rowcount)


def get_by_war_room(session: Session, *, channel_id: str) -> Incident | None:
    return session.scalar(select(Incident).where(Incident.war_room_channel_id == channel_id))


@dataclass
class IncidentFilter:
    status: list[str] | None = None
    severity: list[str] | None = None
    service: str | None = None
    team: str | None = None
    since: datetime | None = None
    until: datetime | None = None  # created before (exclusive)
    search: str | None = None
    open_only: bool = False
    involving_person_id: int | None = None
    include_private: bool = True
    # With include_private False: private incidents this person is involved in stay visible
    # (lead, declarer, role holder, the team's on-call, invited to the war room).
    private_visible_to: PrivateViewer | None = None


@dataclass(frozen=True)
class PrivateViewer:
    person_id: int | None
    slack_user_id: str | None


def involves(viewer: PrivateViewer) -> ColumnElement[bool]:
    """SQL: the incident involves ``viewer`` (the access policy's definition, in SQL)."""
    pid = viewer.person_id if viewer.person_id is not None else -1
    # Aliases, so the sub-queries correlate with the incident only, even when the outer
    # query joins the same tables (the team filter joins ``teams``).
    role, team, event = aliased(IncidentRole), aliased(Team), aliased(TimelineEvent)
    clauses: list[ColumnElement[bool]] = [
        Incident.lead_id == pid,
        Incident.declared_by_id == pid,
        select(role.id).where(role.incident_id == Incident.id, role.person_id == pid).exists(),
        select(team.id).where(team.id == Incident.team_id, team.current_on_call_id == pid).exists(),
    ]
    if viewer.slack_user_id and viewer.slack_user_id.isalnum():
        clauses.append(
            select(event.id)
            .where(
                event.incident_id == Incident.id,
                event.type == "WAR_ROOM_CREATED",
                cast(event.data, Text).like(f'%"{viewer.slack_user_id}"%'),
            )
            .exists()
        )
    return or_(*clauses)


def list_incidents(
    session: Session, *, filters: IncidentFilter | None = None, offset: int = 0, limit: int = 50
) -> tuple[int, list[Incident]]:
    """Matching incidents, newest first, and the total count before paging."""
    f = filters or IncidentFilter()
    query = select(Incident)
    if f.status:
        query = query.where(Incident.status.in_(f.status))
    if f.open_only:
        query = query.where(Incident.status != "RESOLVED")
    if f.severity:
        query = query.where(Incident.severity.in_(f.severity))
    if f.service:
        query = query.join(Service, Incident.service_id == Service.id).where(
            or_(func.lower(Service.name) == f.service.lower(), Service.id == _int_or(f.service))
        )
    if f.team:
        query = query.join(Team, Incident.team_id == Team.id).where(
            or_(func.lower(Team.name) == f.team.lower(), Team.id == _int_or(f.team))
        )
    if f.since:
        query = query.where(Incident.created_at >= f.since)
    if f.until:
        query = query.where(Incident.created_at < f.until)
    if f.search:
        pattern = f"%{f.search}%"
        query = query.where(
            or_(
                Incident.title.ilike(pattern),
                Incident.description.ilike(pattern),
                Incident.short_id.ilike(pattern),
            )
        )
    if f.involving_person_id is not None:
        query = query.where(
            or_(
                Incident.lead_id == f.involving_person_id,
                Incident.declared_by_id == f.involving_person_id,
            )
        )
    if not f.include_private:
        if f.private_visible_to is not None:
            query = query.where(or_(Incident.private.is_(False), involves(f.private_visible_to)))
        else:
            query = query.where(Incident.private.is_(False))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(
            selectinload(Incident.service),
            selectinload(Incident.team),
            selectinload(Incident.lead),
            # what bot.presenter.incident_json reads of every row: one query each, not one
            # per incident (the dashboard's and the API's lists)
            selectinload(Incident.declared_by),
            selectinload(Incident.scopes),
            selectinload(Incident.roles).selectinload(IncidentRole.person),
        )
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return total, list(rows)


def _int_or(value: str) -> int:
    return int(value) if value.isdigit() else -1


def add_event(
    session: Session,
    *,
    incident: Incident,
    type: str,
    message: str,
    actor: str | None = None,
    source: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    external_key: str | None = None,
) -> TimelineEvent | None:
    """Append a timeline event. With ``external_key``, a second call is a no-op (None)."""
    if external_key is not None:
        existing = session.scalar(
            select(TimelineEvent).where(TimelineEvent.external_key == external_key)
        )
        if existing is not None:
            return None
    event = TimelineEvent(
        incident_id=incident.id,
        type=type,
        message=message,
        actor=actor,
        source=source,
        data=data or {},
        at=at or utcnow(),
        external_key=external_key,
    )
    session.add(event)
    session.flush()
    return event


def events_of_type(session: Session, *, incident_id: int, type: str) -> list[TimelineEvent]:
    return list(
        session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id, TimelineEvent.type == type)
            .order_by(TimelineEvent.id)
        )
    )


def timeline(session: Session, *, incident_id: int) -> list[TimelineEvent]:
    return list(
        session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id)
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
    )


def delete_event(session: Session, *, external_key: str) -> bool:
    event = session.scalar(select(TimelineEvent).where(TimelineEvent.external_key == external_key))
    if event is None:
        return False
    session.delete(event)
    return True


def person_label(person: Person | None) -> str | None:
    return person.label if person else None
