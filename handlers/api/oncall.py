"""On-call over REST (``bot.flows.oncall``) and the calendar feed.

=================================================  =========  ================================
Route                                              Role       Answer
=================================================  =========  ================================
GET  /api/v1/oncall/?team=&at=                     viewer     who is on call (every team, or
                                                              one), at ``at`` (default now)
POST /api/v1/oncall/overrides/                     responder  201 the override (audited)
GET  /api/v1/oncall/{schedule}/calendar.ics        viewer     iCalendar feed, next 90 days
GET  /api/v1/oncall/people/{person}/calendar.ics   viewer     one person's shifts, every team
=================================================  =========  ================================

The calendar feed is meant for Google Calendar or Outlook "subscribe from URL", which
cannot send an ``Authorization`` header: it also accepts the API token in the query
string, ``?token=...``. Use a dedicated **viewer** token for it (``imas token create
--role viewer``): whoever has the URL can read the schedule until the token is revoked.
Access logs are off (``handlers.server``), so the token is not written to logs.
``{schedule}`` is a schedule name or a team name (its schedule, or its current_on_call);
``{person}`` a Slack user id or an e-mail (events are named after the team).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import Response
from icalendar import Calendar, Event

from bot.domain.errors import InputError
from bot.flows import oncall
from bot.oncall import Shift
from bot.runtime import Runtime
from handlers.api.auth import (
    Principal,
    authenticate_token,
    authorization_header,
    check_role,
    credentials,
    require,
)
from handlers.api.body import body_schema, json_body
from handlers.api.schemas import ErrorOut, OnCallList, OverrideIn, OverrideOut

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input", "model": ErrorOut},
    401: {"description": "Missing or invalid token", "model": ErrorOut},
    403: {"description": "Role too low", "model": ErrorOut},
    404: {"description": "No such team or schedule", "model": ErrorOut},
}
Viewer = Annotated[Principal, Depends(require("viewer"))]
Responder = Annotated[Principal, Depends(require("responder"))]
CALENDAR_DAYS = 90


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def calendar(name: str, found: list[tuple[Shift, str]], now: datetime) -> bytes:
    """An iCalendar document: one event per shift (``SUMMARY``: who is on call)."""
    cal = Calendar()
    cal.add("prodid", "-//IMAS//on-call//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"On call: {name}")
    for shift, label in found:
        event = Event()
        event.add("uid", f"{name}-{label}-{int(shift.start.timestamp())}-{shift.person}@imas")
        event.add("dtstamp", now)
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        event.add("summary", f"On call: {label}")
        event.add("description", f"{shift.person} on call ({name}: {label}, layer {shift.layer})")
        cal.add_component(event)
    return bytes(cal.to_ical())


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(responses=ERRORS)

    @router.get("/api/v1/oncall/", tags=["oncall"], response_model=OnCallList)
    def who_is_on_call(
        request: Request,
        p: Viewer,
        team: Annotated[str | None, Query(max_length=200)] = None,
        at: Annotated[
            datetime | None, Query(description="ISO 8601; a time without offset is UTC")
        ] = None,
    ) -> Any:
        """Who is on call at ``at`` (default now) for ``team`` (default every team)."""
        answers = oncall.on_call(
            rt,
            actor=p.actor("rest", request.headers.get("x-request-id")),
            team=team or None,
            at=_aware(at),
        )
        return {"results": [a.as_json() for a in answers]}

    @router.post(
        "/api/v1/oncall/overrides/",
        tags=["oncall"],
        status_code=201,
        response_model=OverrideOut,
        openapi_extra=body_schema(OverrideIn),
    )
    def create_override(
        request: Request,
        p: Responder,
        body: Annotated[OverrideIn, Depends(json_body(OverrideIn))],
    ) -> Any:
        """``person`` covers ``team`` (or a schedule) for a while; beats every layer."""
        duration = oncall.parse_duration(body.duration) if body.duration else None
        return oncall.create_override(
            rt,
            actor=p.actor("rest", request.headers.get("x-request-id")),
            target=body.team,
            person=body.person,
            start=_aware(body.starts_at),
            end=_aware(body.ends_at),
            duration=duration,
        )

    @router.get(
        "/api/v1/oncall/{schedule}/calendar.ics",
        tags=["oncall"],
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}},
    )
    def calendar_feed(
        schedule: str,
        token: Annotated[
            str | None, Query(max_length=200, description="API token (viewer), for subscriptions")
        ] = None,
        authorization: str | None = Security(authorization_header),
    ) -> Response:
        """The schedule's shifts for the next 90 days as an iCalendar feed."""
        if len(schedule) > 200:
            raise InputError("schedule: too long", field="schedule")
        secret = token if token else credentials(authorization)
        principal = check_role(authenticate_token(rt, secret), "viewer")
        now = rt.clock()
        name, found = oncall.schedule_shifts(
            rt,
            actor=principal.actor("calendar"),
            schedule=schedule,
            start=now,
            end=now + timedelta(days=CALENDAR_DAYS),
        )
        return Response(calendar(name, found, now), media_type="text/calendar; charset=utf-8")

    @router.get(
        "/api/v1/oncall/people/{person}/calendar.ics",
        tags=["oncall"],
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}},
    )
    def person_calendar_feed(
        person: str,
        token: Annotated[
            str | None, Query(max_length=200, description="API token (viewer), for subscriptions")
        ] = None,
        authorization: str | None = Security(authorization_header),
    ) -> Response:
        """One person's on-call shifts, every team, for the next 90 days (iCalendar)."""
        if len(person) > 320:
            raise InputError("person: too long", field="person")
        secret = token if token else credentials(authorization)
        principal = check_role(authenticate_token(rt, secret), "viewer")
        now = rt.clock()
        label, found = oncall.person_shifts(
            rt,
            actor=principal.actor("calendar"),
            person=person,
            start=now,
            end=now + timedelta(days=CALENDAR_DAYS),
        )
        return Response(calendar(label, found, now), media_type="text/calendar; charset=utf-8")

    return router
