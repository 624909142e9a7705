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

from bot.domain.enums import SEVERITIES
from bot.flows.declare import TITLE_MAX

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Description = Annotated[str, StringConstraints(max_length=10000)]
Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]

_SEVERITY_ALIASES = {name.split("_")[0]: name for name in SEVERITIES}


def normalise_severity(value: Any) -> Any:
    """``SEV2_HIGH``, ``sev2_high`` and ``SEV2`` all mean SEV2_HIGH; anything else is left
    for the validator to reject."""
    if isinstance(value, str):
        word = value.strip().upper()
        return _SEVERITY_ALIASES.get(word, word)
    return value


def check_severity(value: str) -> str:
    if value not in SEVERITIES:
        raise ValueError(f"must be one of {', '.join(SEVERITIES)}")
    return value


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
    severity: str
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
    severity: str | None = None
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
    severity: str
    status: str
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
    status: str
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
    by: str | None
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
