"""SQLAlchemy 2 models (``Mapped[]``). Every schema change comes with an Alembic migration
in ``storage/migrations/versions``.

Times are stored as UTC and always come back timezone-aware (``UTCDateTime``), on SQLite
as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    relationship,
)
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Person(Base):
    """Someone IMAS can name: a Slack user, an e-mail address, or both."""

    __tablename__ = "persons"
    id: Mapped[int] = mapped_column(primary_key=True)
    slack_user_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")

    @property
    def label(self) -> str:
        return self.display_name or self.email or self.slack_user_id or f"person {self.id}"


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    current_on_call_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    escalation_timeout_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # Ordered escalation levels after the on-call: [{"target": email|user id|"@here", "delay_minutes": n}]
    escalation_levels: Mapped[list[Any]] = mapped_column(JSON, default=list)

    current_on_call: Mapped[Person | None] = relationship(foreign_keys=[current_on_call_id])
    members: Mapped[list[Person]] = relationship(secondary="team_members", order_by="Person.id")


class Service(Base):
    __tablename__ = "services"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    criticality: Mapped[str] = mapped_column(String(32), default="TIER_2")
    runbook_url: Mapped[str | None] = mapped_column(String(2048))
    repository_url: Mapped[str | None] = mapped_column(String(2048))
    monitoring_url: Mapped[str | None] = mapped_column(String(2048))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    owner_team: Mapped[Team | None] = relationship()


class ImpactScope(Base):
    __tablename__ = "impact_scopes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    notify_emails: Mapped[list[Any]] = mapped_column(JSON, default=list)
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))


class NotificationProviderRow(Base):
    """A configured provider. ``config_encrypted`` holds the Fernet-encrypted JSON config."""

    __tablename__ = "notification_providers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    config_encrypted: Mapped[str] = mapped_column(Text)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppSetting(Base):
    """Configuration-as-code values that are not rows of their own (war_room, reminders)."""

    __tablename__ = "app_settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IncidentScope(Base):
    __tablename__ = "incident_scopes"
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    scope_id: Mapped[int] = mapped_column(ForeignKey("impact_scopes.id"), primary_key=True)


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    short_id: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="TRIGGERED")
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32), default="slack")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    declared_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    lid_document_id: Mapped[str | None] = mapped_column(String(200))
    lid_url: Mapped[str | None] = mapped_column(String(2048))
    lid_synced_at: Mapped[datetime | None] = mapped_column()
    war_room_channel_id: Mapped[str | None] = mapped_column(String(32))
    war_room_channel_name: Mapped[str | None] = mapped_column(String(80))
    war_room_url: Mapped[str | None] = mapped_column(String(2048))
    war_room_summary_ts: Mapped[str | None] = mapped_column(String(32))
    # What IMAS last wrote to the war room, so a refresh writes only what changed.
    war_room_topic: Mapped[str | None] = mapped_column(String(250))
    war_room_bookmarks: Mapped[list[str] | None] = mapped_column(JSON)
    resolution_summary: Mapped[str | None] = mapped_column(Text)
    detected_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    mitigated_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)

    service: Mapped[Service] = relationship()
    team: Mapped[Team | None] = relationship()
    lead: Mapped[Person | None] = relationship(foreign_keys=[lead_id])
    declared_by: Mapped[Person | None] = relationship(foreign_keys=[declared_by_id])
    scopes: Mapped[list[ImpactScope]] = relationship(
        secondary="incident_scopes", order_by="ImpactScope.name"
    )
    roles: Mapped[list[IncidentRole]] = relationship(
        back_populates="incident", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_incidents_status_severity", "status", "severity"),)

    @property
    def is_open(self) -> bool:
        return self.status != "RESOLVED"


class IncidentRole(Base):
    __tablename__ = "incident_roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="roles")
    person: Mapped[Person] = relationship()
    __table_args__ = (UniqueConstraint("incident_id", "role", name="uq_incident_role"),)


class FollowUp(Base):
    """An action to take after an incident (a post-mortem action item), tracked in IMAS:
    ``state`` is ``open`` or ``done``; ``owner`` and ``due_date`` are optional."""

    __tablename__ = "followups"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(500))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    due_date: Mapped[date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column()

    owner: Mapped[Person | None] = relationship()


class TimelineEvent(Base):
    """What happened, when, by whom, from where. Append-only.

    ``external_key`` is unique when set: pinned Slack messages (``pin:<channel>:<ts>``),
    deliveries (``delivery:<id>``) and other events that must be recorded once.
    """

    __tablename__ = "timeline_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    external_key: Mapped[str | None] = mapped_column(String(255), unique=True)


class OutboxItem(Base):
    """One side effect to perform (the Delivery of SPEC §3).

    States: ``pending`` -> ``in_flight`` -> ``done``; a retryable failure goes to
    ``failed`` with ``next_attempt_at``; a permanent one (or too many attempts) to
    ``dead``. A row ``in_flight`` past ``lease_until`` belongs to a crashed worker and is
    claimed again.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(32))
    provider_name: Mapped[str | None] = mapped_column(String(200))
    recipient_kind: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    done_at: Mapped[datetime | None] = mapped_column()
    # Fencing (issue 11): each claim increments ``claim_token``; only the claimant whose
    # token still matches records the outcome or renews the lease. ``claimed_by`` names
    # the worker (``workers.id``) so rows of a dead process are reclaimed without waiting
    # for the lease; ``first_claimed_at`` is when the step first started (a retry looks
    # for its own earlier post from there on).
    claim_token: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    first_claimed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    group_key: Mapped[str | None] = mapped_column(String(500))
    incident_key: Mapped[str] = mapped_column(String(600), default="")
    starts_at: Mapped[datetime | None] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column()
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rule_name: Mapped[str | None] = mapped_column(String(200))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)

    __table_args__ = (
        Index("ix_alerts_source_fp", "source", "fingerprint"),
        Index("ix_alerts_incident_key", "incident_key"),
    )


class AlertRule(Base):
    __tablename__ = "alert_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ApiUser(Base):
    __tablename__ = "api_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("api_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class SeenRequest(Base):
    """Inbound request dedup: Slack event ids, replayed signatures, webhook deliveries."""

    __tablename__ = "seen_requests"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ScheduledTask(Base):
    """Time-driven work kept in the database (reminders, escalations, archiving), so it
    survives restarts and is claimed by exactly one process."""

    __tablename__ = "scheduled_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    lease_until: Mapped[datetime | None] = mapped_column()
    runs: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        UniqueConstraint("incident_id", "kind", name="uq_scheduled_task"),
        Index("ix_scheduled_due", "state", "due_at"),
    )


class Lease(Base):
    """A named lease (e.g. the scheduler leader) held by one process until ``until``."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    until: Mapped[datetime] = mapped_column()


class AppendOnlyError(RuntimeError):
    """An attempt to change or delete a row of an append-only table (``audit_log``)."""


class AuditEntry(Base):
    """Who did what, through which door, to what, and whether it was allowed. Append-only:
    the application refuses UPDATE and DELETE (ORM events below) and so does the database
    (triggers created by migration 0003, and by ``create_all`` through ``AUDIT_LOG_DDL``).

    ``at`` is the application's clock (UTC). ``changes`` is ``{field: [before, after]}``
    (a field whose values must not be recorded, e.g. a provider's configuration, appears as
    ``{field: None}``); ``config.apply`` rows hold per-kind counts instead. Written through
    ``storage.audit.record``.
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    door: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(255), index=True)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    detail: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))


APPEND_ONLY_MESSAGE = "audit_log is append-only"

# The database-level guard, for schemas made by ``Base.metadata.create_all`` (migration
# 0003 creates the same triggers, with its own frozen copy of this SQL).
AUDIT_LOG_DDL: dict[str, list[str]] = {
    "sqlite": [
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'restrict_violation'; "
        "END $$",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    ],
}


@sa_event.listens_for(AuditEntry.__table__, "after_create")
def _create_audit_triggers(_table: Any, connection: Connection, **_kw: Any) -> None:
    for statement in AUDIT_LOG_DDL.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)


def _refuse(*_args: Any) -> None:
    raise AppendOnlyError(APPEND_ONLY_MESSAGE)


sa_event.listen(AuditEntry, "before_update", _refuse)
sa_event.listen(AuditEntry, "before_delete", _refuse)


@sa_event.listens_for(Session, "before_flush")
def _no_audit_changes(session: Session, _context: Any, _instances: Any) -> None:
    """Refuse a flush that would change or delete an audit row (before any SQL is sent)."""
    for obj in session.deleted:
        if isinstance(obj, AuditEntry):
            _refuse()
    for obj in session.dirty:
        if isinstance(obj, AuditEntry) and session.is_modified(obj):
            _refuse()


@sa_event.listens_for(Session, "do_orm_execute")
def _no_audit_bulk_changes(state: ORMExecuteState) -> None:
    """Refuse ``session.execute(update(AuditEntry)...)`` / ``delete(AuditEntry)``."""
    if (state.is_update or state.is_delete) and any(
        mapper.class_ is AuditEntry for mapper in state.all_mappers
    ):
        _refuse()


class Worker(Base):
    """One running outbox process (issue 11): registered at start, heartbeating while
    alive. Rows ``in_flight`` claimed by a worker whose heartbeat is older than
    ``IMAS_WORKER_DEAD_SECONDS`` are claimed again at once, without waiting for the lease."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Schedule(Base):
    """An on-call schedule (``bot.oncall``): its layers as the ``schedules:`` spec JSON,
    and the team it answers for (at most one schedule per team)."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), unique=True
    )
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    team: Mapped[Team | None] = relationship()


class ScheduleOverride(Base):
    """Someone covering a schedule from ``starts_at`` to ``ends_at`` (beats every layer)."""

    __tablename__ = "schedule_overrides"
    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship()
