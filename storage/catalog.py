"""Teams, people, services, impact scopes, providers and app settings.

Keyword-only functions, session first. None of them commits: the caller owns the
transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import (
    AppSetting,
    ImpactScope,
    NotificationProviderRow,
    Person,
    Service,
    Team,
    TeamMember,
)


def looks_like_slack_user(ref: str) -> bool:
    return ref[:1] in ("U", "W") and ref.isalnum() and ref.upper() == ref and len(ref) >= 5


def get_person(session: Session, *, ref: str) -> Person | None:
    """The person named by an e-mail address or a Slack user id, if known."""
    if looks_like_slack_user(ref):
        return session.scalar(select(Person).where(Person.slack_user_id == ref))
    wanted = ref.strip().lower()
    found = session.scalar(select(Person).where(func.lower(Person.email) == wanted))
    if found is None and not wanted.isascii():
        # SQLite's lower() folds ASCII only: compare non-ASCII addresses in Python, so
        # both databases find the same person (people tables are small).
        for person in session.scalars(select(Person).where(Person.email.is_not(None))):
            if person.email is not None and person.email.strip().lower() == wanted:
                return person
    return found


def ensure_person(
    session: Session, *, ref: str, display_name: str | None = None, email: str | None = None
) -> Person:
    """Get or create the person for ``ref`` (e-mail or Slack user id). Idempotent."""
    person = get_person(session, ref=ref)
    if person is None and email:
        person = get_person(session, ref=email)
    if person is None:
        if looks_like_slack_user(ref):
            person = Person(slack_user_id=ref, email=email, display_name=display_name or "")
        else:
            person = Person(email=ref, display_name=display_name or "")
        try:
            with session.begin_nested():
                session.add(person)
                session.flush()
        except IntegrityError:
            # Another transaction created the same person concurrently: use theirs.
            found = get_person(session, ref=ref)
            if found is None:
                raise
            person = found
    else:
        if looks_like_slack_user(ref) and person.slack_user_id is None:
            person.slack_user_id = ref
        if email and not person.email:
            person.email = email
        if display_name and not person.display_name:
            person.display_name = display_name
    return person


def is_team_member(session: Session, *, person_id: int) -> bool:
    """Whether the person is a member of any configured team."""
    return (
        session.scalar(select(TeamMember.team_id).where(TeamMember.person_id == person_id).limit(1))
        is not None
    )


def get_team(session: Session, *, name: str) -> Team | None:
    return session.scalar(select(Team).where(Team.name == name))


def list_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))


def get_service(session: Session, *, ref: str | int) -> Service | None:
    """A service by id (int or digits) or by exact name (case-insensitive)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        found = session.get(Service, int(ref))
        if found is not None:
            return found
    return session.scalar(select(Service).where(func.lower(Service.name) == str(ref).lower()))


def list_services(
    session: Session, *, search: str | None = None, active_only: bool = False
) -> list[Service]:
    query = select(Service).order_by(Service.name)
    if search:
        query = query.where(Service.name.ilike(f"%{search}%"))
    if active_only:
        query = query.where(Service.is_active.is_(True))
    return list(session.scalars(query))


def get_scope(session: Session, *, name: str) -> ImpactScope | None:
    return session.scalar(select(ImpactScope).where(func.lower(ImpactScope.name) == name.lower()))


def list_scopes(session: Session) -> list[ImpactScope]:
    return list(session.scalars(select(ImpactScope).order_by(ImpactScope.name)))


def list_providers(session: Session, *, active_only: bool = False) -> list[NotificationProviderRow]:
    query = select(NotificationProviderRow).order_by(NotificationProviderRow.name)
    if active_only:
        query = query.where(NotificationProviderRow.is_active.is_(True))
    return list(session.scalars(query))


def get_provider(session: Session, *, name: str) -> NotificationProviderRow | None:
    return session.scalar(
        select(NotificationProviderRow).where(NotificationProviderRow.name == name)
    )


def get_app_setting(session: Session, *, key: str) -> dict[str, Any]:
    row = session.get(AppSetting, key)
    return dict(row.value) if row else {}


def set_app_setting(session: Session, *, key: str, value: dict[str, Any]) -> bool:
    """Store ``value`` under ``key``; returns True when it changed."""
    row = session.get(AppSetting, key)
    if row is None:
        session.add(AppSetting(key=key, value=value))
        return True
    if row.value != value:
        row.value = value
        return True
    return False
