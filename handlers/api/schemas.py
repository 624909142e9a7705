"""Request and response models of the REST API (they are also its OpenAPI document).

Request models ignore unknown keys (as Django REST framework does) and reject wrong
types; response models describe what ``bot.presenter.incident_json`` and the other
serialisers return.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from bot.domain.enums import SEVERITIES, STATUSES, severity_value
from bot.flows.declare import TITLE_MAX
from bot.kpis import GROUPINGS
from storage.alerts import ALERT_STATUSES

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Description = Annotated[str, StringConstraints(max_length=10000)]
Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]

# Enumerations, as enums in the OpenAPI document (values stay plain strings in Python).
SeverityName = Annotated[
    str,
    Field(
        json_schema_extra={"enum": list(SEVERITIES)},
        description="Short forms SEV1..SEV4 and any case are accepted on input.",
    ),
]
StatusName = Annotated[str, Field(json_schema_extra={"enum": list(STATUSES)})]
AlertStatusName = Annotated[str, Field(json_schema_extra={"enum": list(ALERT_STATUSES)})]
GroupingName = Annotated[str, Field(json_schema_extra={"enum": list(GROUPINGS)})]


def normalise_severity(value: Any) -> Any:
    """Every spelling ``bot.domain.enums.parse_severity`` accepts (``SEV2_HIGH``, ``SEV2``,
    ``high``, ``P2``…) means SEV2_HIGH; anything else is left for the validator to reject
    with the parser's message."""
    if isinstance(value, str):
        try:
            return severity_value(value)
        except ValueError:
            return value
    return value


def check_severity(value: str) -> str:
    return severity_value(value)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: Annotated[str, StringConstraints(min_length=1, max_length=150)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class LoginOut(BaseModel):
    token: str
    username: str
    role: str


class IncidentCreate(BaseModel):
    """A new incident. ``service`` is a service id (number or numeric string) or name."""

    model_config = ConfigDict(extra="ignore")
    title: Title
    service: int | Ref
    severity: SeverityName
    description: Description = ""
    scopes: list[Ref] = Field(default_factory=list, max_length=50)
    lead: Ref | None = Field(None, description="E-mail or Slack user id of the lead.")
    private: bool = False
    detected_at: datetime | None = None

    _severity = field_validator("severity", mode="before")(normalise_severity)

    @field_validator("service", mode="wrap")
    @classmethod
    def _service_ref(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a service id or name")
        try:
            return handler(value)
        except ValidationError:
            raise ValueError("must be a service id (a number) or name (a string)") from None

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        return check_severity(value)


class IncidentPatch(BaseModel):
    """Fields to change; absent or null fields are left as they are."""

    model_config = ConfigDict(extra="ignore")
    title: Title | None = None
    description: Description | None = None
    severity: SeverityName | None = None
    lead: Ref | None = None

    _severity = field_validator("severity", mode="before")(normalise_severity)

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str | None) -> str | None:
        return None if value is None else check_severity(value)


class StatusChangeIn(BaseModel):
    """Optional body of acknowledge/mitigate/resolve/reopen: a note (for resolve, the
    resolution summary; ``summary`` is accepted as a synonym)."""

    model_config = ConfigDict(extra="ignore")
    note: Annotated[str, StringConstraints(max_length=10000)] | None = None
    summary: Annotated[str, StringConstraints(max_length=10000)] | None = None

    @property
    def text(self) -> str | None:
        value = (self.summary or self.note or "").strip()
        return value or None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10000)]


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    owner: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = None
    due_date: Annotated[str, StringConstraints(strip_whitespace=True, max_length=10)] | None = None


class FollowUpOut(BaseModel):
    id: int
    title: str
    owner: str | None
    due_date: str | None
    state: str
    created_by: str | None
    created_at: str | None


class Page(BaseModel):
    count: int
    next: str | None
    previous: str | None


class ServiceOut(BaseModel):
    id: int
    name: str
    owner_team: str | None
    criticality: str
    runbook_url: str | None
    is_active: bool


class ServicePage(Page):
    results: list[ServiceOut]


class TeamOut(BaseModel):
    id: int
    name: str
    slack_channel_id: str | None
    email: str | None
    current_on_call: str | None
    members: list[str]


class TeamPage(Page):
    results: list[TeamOut]


class EventOut(BaseModel):
    id: int
    at: str | None
    type: str
    message: str
    actor: str | None
    source: str | None
    data: dict[str, Any]


class EventPage(Page):
    results: list[EventOut]


class IncidentOut(BaseModel):
    """``bot.presenter.incident_json`` (the detail view adds ``timeline`` and
    ``deliveries``)."""

    model_config = ConfigDict(extra="allow")
    id: int
    short_id: str
    title: str
    description: str
    severity: SeverityName
    status: StatusName
    private: bool
    source: str
    service: str
    service_id: int
    team: str | None
    lead: str | None
    declared_by: str | None
    scopes: list[str]
    roles: dict[str, str]
    lid_url: str | None
    war_room_channel_id: str | None
    war_room_url: str | None
    resolution_summary: str | None
    url: str
    detected_at: str | None
    created_at: str | None
    acknowledged_at: str | None
    mitigated_at: str | None
    resolved_at: str | None
    lid_synced_at: str | None
    timeline: list[dict[str, Any]] | None = None
    deliveries: list[dict[str, Any]] | None = None


class IncidentPage(Page):
    results: list[IncidentOut]


class AlertOut(BaseModel):
    id: int
    source: str
    fingerprint: str
    status: AlertStatusName
    name: str
    summary: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    group_key: str | None
    incident_key: str
    incident_id: int | None
    incident: str | None
    rule: str | None
    count: int
    starts_at: str | None
    ends_at: str | None
    first_seen_at: str | None
    last_seen_at: str | None


class AlertPage(Page):
    results: list[AlertOut]


class DurationStats(BaseModel):
    count: int
    mean: float | None
    p50: float | None
    p90: float | None


class KpiOut(BaseModel):
    total: int
    open: int
    by_status: dict[str, int]
    by_severity: dict[str, int]
    mttd: DurationStats
    mtta: DurationStats
    mttr: DurationStats


class MetricsOut(KpiOut):
    since: str | None
    until: str | None
    by: GroupingName | None
    groups: dict[str, KpiOut] | None


class UnroutedOut(BaseModel):
    alert: str
    fingerprint: str
    reason: str


class WebhookOut(BaseModel):
    received: int
    stored: int
    deduplicated: int
    created_incidents: list[str]
    resolved_incidents: list[str]
    reopened_incidents: list[str]  # by an alert firing again (the rule's on_refire)
    incidents: list[str]
    unrouted: list[UnroutedOut]


class AuditEntryOut(BaseModel):
    """One audit row (``storage.audit.entry_json``). ``changes`` is ``{field: [before,
    after]}`` (``{field: null}`` when the values are not recorded, e.g. provider
    configuration); ``config.apply`` rows hold per-kind counts."""

    id: int
    at: str | None
    actor: str
    actor_kind: str
    actor_ref: str | None
    door: str
    action: str
    target_type: str
    target: str | None
    changes: dict[str, Any] | None
    outcome: str
    detail: str | None
    request_id: str | None


class AuditPage(Page):
    results: list[AuditEntryOut]


class ErrorOut(BaseModel):
    detail: str


# -- on-call (handlers.api.oncall) ------------------------------------------------------


class OnCallOut(BaseModel):
    team: str
    schedule: str | None
    at: str
    person: str | None = Field(description="label of the person on call; null: nobody")
    slack_user_id: str | None
    ref: str | None = Field(description="Slack user id or e-mail, as schedules name people")
    until: str | None = Field(description="end of the current shift (within 30 days)")


class OnCallList(BaseModel):
    results: list[OnCallOut]


class OverrideIn(BaseModel):
    """Someone covers a team (or a schedule) from ``starts_at`` (default now) to
    ``ends_at``, or for ``duration`` (``2h``, ``30m``, ``1h30m``, ``1d``)."""

    model_config = ConfigDict(extra="ignore")
    team: Ref = Field(description="team or schedule name")
    person: Ref = Field(description="Slack user id or e-mail")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: str | None = Field(None, max_length=20)


class OverrideOut(BaseModel):
    id: int
    schedule: str
    team: str | None
    person: str
    ref: str | None
    starts_at: str
    ends_at: str
    created_by: str
