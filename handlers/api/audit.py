"""``GET /api/v1/audit/`` (admin): the audit log, newest first, filtered and paged.

Query filters: ``action`` (prefix: ``incident`` finds ``incident.acknowledge``),
``actor_ref`` (Slack user id, token id, username), ``actor`` (``actor_ref`` or label),
``door``, ``target_type``, ``target``, ``outcome`` (``ok``/``denied``), ``since``
(inclusive) and ``until`` (exclusive), ISO 8601 (a time without offset is UTC). A malformed
value is a 400.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from bot.domain.errors import InputError
from bot.runtime import Runtime
from handlers.api.auth import Principal, require
from handlers.api.body import utc_instant
from handlers.api.pages import PageParams, page_params, paginated
from handlers.api.schemas import AuditPage, ErrorOut
from storage import audit as audit_store

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid filter or page", "model": ErrorOut},
    401: {"description": "Missing or invalid token", "model": ErrorOut},
    403: {"description": "Role too low (admin only)", "model": ErrorOut},
}
Admin = Annotated[Principal, Depends(require("admin"))]
Page = Annotated[PageParams, Depends(page_params)]


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if not value:
        return None
    word = value.strip().lower()
    if word not in allowed:
        raise InputError(f"{name}: expected one of {', '.join(allowed)}.", field=name)
    return word


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(responses=ERRORS)

    @router.get("/api/v1/audit/", tags=["audit"], response_model=AuditPage)
    def list_audit(
        request: Request,
        _p: Admin,
        page: Page,
        action: Annotated[
            str | None, Query(max_length=64, description="Prefix, e.g. `incident` or `token.`")
        ] = None,
        actor_ref: Annotated[
            str | None,
            Query(max_length=200, description="Slack user id, token id or username"),
        ] = None,
        actor: Annotated[
            str | None, Query(max_length=200, description="actor_ref or actor label")
        ] = None,
        door: Annotated[
            str | None,
            Query(
                description="the door the act came through",
                json_schema_extra={"enum": list(audit_store.DOORS)},
            ),
        ] = None,
        target_type: Annotated[
            str | None, Query(max_length=32, description="incident, token, user, ...")
        ] = None,
        target: Annotated[
            str | None, Query(max_length=255, description="e.g. an incident short id")
        ] = None,
        outcome: Annotated[
            str | None,
            Query(
                description="ok or denied", json_schema_extra={"enum": list(audit_store.OUTCOMES)}
            ),
        ] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    ) -> Any:
        """The audit log (admin role), newest first: who did what, through which door, to
        what, and whether it was allowed."""
        filters = audit_store.AuditFilter(
            action=action or None,
            actor_ref=actor_ref or None,
            actor=actor or None,
            door=_choice(door, audit_store.DOORS, "door"),
            target_type=target_type or None,
            target=target or None,
            outcome=_choice(outcome, audit_store.OUTCOMES, "outcome"),
            since=utc_instant(since, "since"),
            until=utc_instant(until, "until"),
        )
        with rt.reading() as session:
            count, rows = audit_store.list_entries(
                session, filters=filters, offset=page.offset, limit=page.size
            )
            results = [audit_store.entry_json(row) for row in rows]
        return paginated(rt, request, page, count, results)

    return router
