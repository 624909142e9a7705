"""The REST API routes (SPEC §7): parse the request, call ``handlers.api.ops``, respond.

Every route is role-checked (``require``), declared before the body dependency so an
unauthenticated or unauthorised request is refused before its body is read. Bodies go
through ``json_body`` (size limit, strict JSON, pydantic model).

=======================================  =========  ==========================================
Route                                    Role       Answer
=======================================  =========  ==========================================
POST /api/auth/token/                    (none)     ``{"token"}``; 400 bad credentials, 429
GET  /api/v1/services/?search=           viewer     page of services
GET  /api/v1/teams/                      viewer     page of teams
GET  /api/v1/incidents/                  viewer     page of incidents (filters below)
POST /api/v1/incidents/                  responder  201 incident (200 on Idempotency-Key repeat)
GET  /api/v1/incidents/{ref}/            viewer     incident with timeline and deliveries
PATCH /api/v1/incidents/{ref}/           responder  incident
POST /api/v1/incidents/{ref}/acknowledge/ responder incident; 409 invalid transition
POST /api/v1/incidents/{ref}/mitigate/   responder  idem
POST /api/v1/incidents/{ref}/resolve/    responder  idem (``note``/``summary``: resolution)
POST /api/v1/incidents/{ref}/reopen/     manager    idem
POST /api/v1/incidents/{ref}/notes/      responder  201 timeline event
GET  /api/v1/incidents/{ref}/timeline/   viewer     page of timeline events
GET  /api/v1/incidents/{ref}/postmortem/ viewer     post-mortem draft (text/markdown)
GET  /api/v1/incidents/{ref}/followups/  viewer     the incident's follow-up actions
POST /api/v1/incidents/{ref}/followups/  responder  201 follow-up (title, owner, due_date)
POST .../followups/{id}/done/            responder  follow-up; 409 already done, 404 unknown
GET  /api/v1/alerts/                     viewer     page of alerts
GET  /api/v1/metrics/                    viewer     counts, MTTD/MTTA/MTTR
GET  /api/v1/audit/                      admin      page of audit rows (``handlers.api.audit``)
=======================================  =========  ==========================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from bot.domain.enums import SEVERITIES
from bot.domain.errors import InputError
from bot.kpis import GROUPINGS, STATUSES
from bot.runtime import Runtime
from handlers.api import ops
from handlers.api.auth import LoginLimiter, Principal, login, require
from handlers.api.body import body_schema, json_body, utc_instant
from handlers.api.pages import PageParams, page_params, paginated
from handlers.api.schemas import (
    AlertPage,
    ErrorOut,
    EventOut,
    EventPage,
    FollowUpIn,
    FollowUpOut,
    IncidentCreate,
    IncidentOut,
    IncidentPage,
    IncidentPatch,
    LoginIn,
    LoginOut,
    MetricsOut,
    NoteIn,
    ServicePage,
    StatusChangeIn,
    TeamPage,
)
from storage.alerts import ALERT_STATUSES, AlertFilter
from storage.incidents import IncidentFilter

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input", "model": ErrorOut},
    401: {"description": "Missing or invalid token", "model": ErrorOut},
    403: {"description": "Role too low", "model": ErrorOut},
    404: {"description": "No such object", "model": ErrorOut},
    409: {"description": "Not possible in the current state", "model": ErrorOut},
    413: {"description": "Body too large", "model": ErrorOut},
}

Viewer = Annotated[Principal, Depends(require("viewer"))]
Manager = Annotated[Principal, Depends(require("manager"))]
Page = Annotated[PageParams, Depends(page_params)]


def _choices(values: list[str] | None, allowed: tuple[str, ...], name: str) -> list[str] | None:
    """Repeated and/or comma-separated values, upper-cased and checked against ``allowed``."""
    if not values:
        return None
    words = [w.strip().upper() for v in values for w in v.split(",") if w.strip()]
    for word in words:
        if word not in allowed:
            raise InputError(
                f"{name}: unknown value {word[:40]!r}; expected one of {', '.join(allowed)}.",
                field=name,
            )
    return words or None


def build_router(rt: Runtime) -> APIRouter:
    """The REST routes, bound to ``rt`` (one login rate limiter per application)."""
    router = APIRouter(responses=ERRORS)
    limiter = LoginLimiter()

    @router.post(
        "/api/auth/token/",
        tags=["auth"],
        response_model=LoginOut,
        openapi_extra=body_schema(LoginIn),
        responses={
            429: {
                "description": "Too many failed logins for this username from this client; "
                "retry after ``Retry-After`` seconds",
                "model": ErrorOut,
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            }
        },
    )
    def obtain_token(
        request: Request, body: Annotated[LoginIn, Depends(json_body(LoginIn))]
    ) -> Any:
        """Exchange a username and password (``imas user create``) for an API token."""
        client = request.client.host if request.client else "unknown"
        return login(rt, limiter, username=body.username, password=body.password, client=client)

    @router.get("/api/v1/services/", tags=["catalog"], response_model=ServicePage)
    def list_services(
        request: Request,
        _p: Viewer,
        page: Page,
        search: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        count, results = ops.services(rt, search=search, page=page)
        return paginated(rt, request, page, count, results)

    @router.get("/api/v1/teams/", tags=["catalog"], response_model=TeamPage)
    def list_teams(request: Request, _p: Viewer, page: Page) -> Any:
        count, results = ops.teams(rt, page=page)
        return paginated(rt, request, page, count, results)

    @router.get("/api/v1/incidents/", tags=["incidents"], response_model=IncidentPage)
    def list_incidents(
        request: Request,
        principal: Viewer,
        page: Page,
        status: Annotated[
            list[str] | None,
            Query(
                description="TRIGGERED, ACKNOWLEDGED, MITIGATED, "
                "RESOLVED or OPEN; repeat or comma-separate",
                json_schema_extra={"items": {"type": "string", "enum": [*STATUSES, "OPEN"]}},
            ),
        ] = None,
        severity: Annotated[
            list[str] | None,
            Query(
                description="repeat or comma-separate",
                json_schema_extra={"items": {"type": "string", "enum": list(SEVERITIES)}},
            ),
        ] = None,
        service: Annotated[str | None, Query(max_length=200, description="id or name")] = None,
        team: Annotated[str | None, Query(max_length=200, description="id or name")] = None,
        since: Annotated[
            datetime | None, Query(description="ISO 8601; created at or after")
        ] = None,
        search: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        statuses = _choices(status, (*STATUSES, "OPEN"), "status")
        open_only = bool(statuses and "OPEN" in statuses)
        chosen = [s for s in statuses or [] if s != "OPEN"]
        filters = IncidentFilter(
            status=chosen or None,
            severity=_choices(severity, SEVERITIES, "severity"),
            service=service,
            team=team,
            since=utc_instant(since, "since"),
            search=search or None,
            open_only=open_only,
        )
        count, results = ops.list_incidents(rt, principal, filters=filters, page=page)
        return paginated(rt, request, page, count, results)

    @router.post(
        "/api/v1/incidents/",
        tags=["incidents"],
        status_code=201,
        response_model=IncidentOut,
        response_model_exclude_unset=True,
        openapi_extra=body_schema(IncidentCreate),
        responses={200: {"description": "Idempotency-Key seen before: the first incident"}},
    )
    def create_incident(
        principal: Viewer,
        body: Annotated[IncidentCreate, Depends(json_body(IncidentCreate))],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="1 to 200 printable characters; a repeat returns the first incident",
                json_schema_extra={"minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"},
            ),
        ] = None,
    ) -> Any:
        """Declare an incident; the same orchestration as Slack follows (war room,
        announcements, LID)."""
        data, created = ops.create_incident(rt, principal, body, idempotency_key)
        return data if created else JSONResponse(data, status_code=200)

    @router.get(
        "/api/v1/incidents/{ref}/",
        tags=["incidents"],
        response_model=IncidentOut,
        response_model_exclude_unset=True,
    )
    def get_incident(ref: str, principal: Viewer) -> Any:
        """An incident by id or short id (``INC-A1B2C3``)."""
        return ops.get_incident(rt, principal, ref)

    @router.patch(
        "/api/v1/incidents/{ref}/",
        tags=["incidents"],
        response_model=IncidentOut,
        response_model_exclude_unset=True,
        openapi_extra=body_schema(IncidentPatch),
    )
    def patch_incident(
        ref: str,
        principal: Viewer,
        body: Annotated[IncidentPatch, Depends(json_body(IncidentPatch))],
    ) -> Any:
        return ops.patch_incident(rt, principal, ref, body)

    def status_route(action: str, role: str) -> None:
        # Authentication here; the role is the access policy's decision (bot.access), the
        # same for every door, ``role`` being its default for this action.
        Who = Annotated[Principal, Depends(require("viewer"))]
        Body = Annotated[StatusChangeIn, Depends(json_body(StatusChangeIn, optional=True))]

        def change(ref: str, principal: Principal, body: StatusChangeIn) -> Any:
            return ops.change_status(rt, principal, ref, action, body.text)

        # Real objects, not strings: FastAPI resolves string annotations in module globals.
        change.__annotations__ = {"ref": str, "principal": Who, "body": Body, "return": Any}
        change.__name__ = f"{action}_incident"
        change.__doc__ = (
            f"{action.capitalize()} the incident ({role} role); 409 when not possible now."
        )
        router.add_api_route(
            f"/api/v1/incidents/{{ref}}/{action}/",
            change,
            methods=["POST"],
            tags=["incidents"],
            response_model=IncidentOut,
            response_model_exclude_unset=True,
            openapi_extra=body_schema(StatusChangeIn, required=False),
        )

    for action in ("acknowledge", "mitigate", "resolve"):
        status_route(action, "responder")
    status_route("reopen", "manager")

    @router.post(
        "/api/v1/incidents/{ref}/notes/",
        tags=["incidents"],
        status_code=201,
        response_model=EventOut,
        openapi_extra=body_schema(NoteIn),
    )
    def add_note(
        ref: str, principal: Viewer, body: Annotated[NoteIn, Depends(json_body(NoteIn))]
    ) -> Any:
        return ops.add_note(rt, principal, ref, body.text)

    @router.get("/api/v1/incidents/{ref}/timeline/", tags=["incidents"], response_model=EventPage)
    def get_timeline(request: Request, ref: str, principal: Viewer, page: Page) -> Any:
        count, results = ops.timeline(rt, principal, ref, page)
        return paginated(rt, request, page, count, results)

    @router.get(
        "/api/v1/incidents/{ref}/followups/",
        tags=["incidents"],
        response_model=list[FollowUpOut],
    )
    def list_followups(ref: str, principal: Viewer) -> Any:
        """The incident's follow-up actions, oldest first."""
        return ops.list_followups(rt, principal, ref)

    @router.post(
        "/api/v1/incidents/{ref}/followups/",
        tags=["incidents"],
        status_code=201,
        response_model=FollowUpOut,
        openapi_extra=body_schema(FollowUpIn),
    )
    def add_followup(
        ref: str, principal: Viewer, body: Annotated[FollowUpIn, Depends(json_body(FollowUpIn))]
    ) -> Any:
        """Add a follow-up action (``owner``: e-mail or Slack user id; ``due_date``:
        ``YYYY-MM-DD``)."""
        return ops.add_followup(rt, principal, ref, body)

    @router.post(
        "/api/v1/incidents/{ref}/followups/{followup_id}/done/",
        tags=["incidents"],
        response_model=FollowUpOut,
    )
    def complete_followup(ref: str, followup_id: int, principal: Viewer) -> Any:
        """Mark a follow-up done (409 when it already is)."""
        return ops.complete_followup(rt, principal, ref, followup_id)

    @router.get(
        "/api/v1/incidents/{ref}/postmortem/",
        tags=["incidents"],
        # Not response_class=PlainTextResponse: that would document the JSON errors
        # (401, 404…) as text/plain too.
        responses={
            200: {
                "description": "The post-mortem draft (Markdown)",
                "content": {"text/markdown": {"schema": {"type": "string"}}},
            }
        },
    )
    def get_postmortem(ref: str, principal: Viewer) -> Any:
        """The post-mortem draft as Markdown (the LID's POST-MORTEM facts, without Google)."""
        short_id, text = ops.get_postmortem(rt, principal, ref)
        return PlainTextResponse(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'inline; filename="{short_id}-postmortem.md"'},
        )

    @router.get("/api/v1/alerts/", tags=["alerts"], response_model=AlertPage)
    def list_alerts(
        request: Request,
        principal: Viewer,
        page: Page,
        status: Annotated[
            str | None,
            Query(
                description="firing or resolved", json_schema_extra={"enum": list(ALERT_STATUSES)}
            ),
        ] = None,
        source: Annotated[str | None, Query(max_length=32)] = None,
        incident: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> Any:
        if status is not None and status.lower() not in ALERT_STATUSES:
            raise InputError(
                f"status: expected one of {', '.join(ALERT_STATUSES)}.", field="status"
            )
        filters = AlertFilter(
            status=status.lower() if status else None,
            source=source.lower() if source else None,
            incident_id=incident,
        )
        count, results = ops.alerts(rt, principal, filters=filters, page=page)
        return paginated(rt, request, page, count, results)

    @router.get("/api/v1/metrics/", tags=["metrics"], response_model=MetricsOut)
    def get_metrics(
        _p: Viewer,
        since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
        by: Annotated[
            str | None,
            Query(description="group the figures", json_schema_extra={"enum": list(GROUPINGS)}),
        ] = None,
    ) -> Any:
        """Incident counts and MTTD/MTTA/MTTR (seconds: mean, p50, p90)."""
        if by is not None and by not in GROUPINGS:
            raise InputError(f"by: expected one of {', '.join(GROUPINGS)}.", field="by")
        return ops.metrics(
            rt, since=utc_instant(since, "since"), until=utc_instant(until, "until"), by=by
        )

    return router
