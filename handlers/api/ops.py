"""What each REST route does, between parsing and responding: one call into a flow (or a
catalog read that carries no policy), the JSON of the result. Every function takes the
caller's ``Principal`` and acts as ``principal.actor()`` (source "api"); the flows apply the
access policy (``bot.access``): a private incident the caller may not see answers 404, as
if it did not exist.

Errors are ``bot.domain.errors`` exceptions (InputError 400, NotFoundError 404, ConflictError
409), mapped to JSON by ``handlers.api.install``; a rejected change writes nothing (its
transaction is rolled back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import kpis
from bot.domain.errors import InputError, NotFoundError
from bot.flows import incidents
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from handlers.api.auth import Principal
from handlers.api.pages import PageParams
from handlers.api.schemas import FollowUpIn, IncidentCreate, IncidentPatch
from storage import alerts as alert_store
from storage import catalog
from storage import incidents as incident_store
from storage.models import Alert

STATUS_FOR_ACTION = {
    "acknowledge": "ACKNOWLEDGED",
    "mitigate": "MITIGATED",
    "resolve": "RESOLVED",
    "reopen": "TRIGGERED",
}
IDEMPOTENCY_KEY_MAX = 200
MAX_ID = 2**31 - 1


def _huge_id(ref: str | int | None) -> bool:
    """A numeric reference no row can have, and that the storage layer (``int(ref)`` when
    ``ref.isdigit()``) could not even convert: non-ASCII digits, more than 10 digits, or
    beyond a 32-bit id."""
    if isinstance(ref, int):
        return not -MAX_ID <= ref <= MAX_ID
    if ref is None:
        return False
    text = ref.strip()
    return text.isdigit() and (not text.isascii() or len(text) > 10 or int(text) > MAX_ID)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- catalog -------------------------------------------------------------------------


def services(
    rt: Runtime, *, search: str | None, page: PageParams
) -> tuple[int, list[dict[str, Any]]]:
    with rt.transaction() as session:
        rows = catalog.list_services(session, search=search or None)
        return len(rows), [
            {
                "id": s.id,
                "name": s.name,
                "owner_team": s.owner_team.name if s.owner_team else None,
                "criticality": s.criticality,
                "runbook_url": s.runbook_url,
                "is_active": s.is_active,
            }
            for s in rows[page.offset : page.offset + page.size]
        ]


def teams(rt: Runtime, *, page: PageParams) -> tuple[int, list[dict[str, Any]]]:
    with rt.transaction() as session:
        rows = catalog.list_teams(session)
        return len(rows), [
            {
                "id": t.id,
                "name": t.name,
                "slack_channel_id": t.slack_channel_id,
                "email": t.email,
                "current_on_call": t.current_on_call.label if t.current_on_call else None,
                "members": [m.label for m in t.members],
            }
            for t in rows[page.offset : page.offset + page.size]
        ]


# -- incidents -----------------------------------------------------------------------
# Each function calls one flow (bot.flows.incidents / bot.flows.declare): the flow applies
# the access policy, writes the change, the timeline, the outbox and the audit row.


def list_incidents(
    rt: Runtime, principal: Principal, *, filters: incident_store.IncidentFilter, page: PageParams
) -> tuple[int, list[dict[str, Any]]]:
    if _huge_id(filters.service) or _huge_id(filters.team):
        return 0, []
    return incidents.list_incidents(
        rt, actor=principal.actor(via="rest"), filters=filters, offset=page.offset, limit=page.size
    )


def get_incident(rt: Runtime, principal: Principal, ref: str) -> dict[str, Any]:
    return incidents.show(rt, actor=principal.actor(via="rest"), ref=_ref(ref), detail=True)


def list_followups(rt: Runtime, principal: Principal, ref: str) -> list[dict[str, Any]]:
    return incidents.list_followups(rt, actor=principal.actor(via="rest"), ref=_ref(ref))


def add_followup(rt: Runtime, principal: Principal, ref: str, body: FollowUpIn) -> dict[str, Any]:
    outcome = incidents.add_followup(
        rt,
        actor=principal.actor(via="rest"),
        ref=_ref(ref),
        title=body.title,
        owner=body.owner or None,
        due=body.due_date or None,
    )
    return dict(outcome.data)


def complete_followup(
    rt: Runtime, principal: Principal, ref: str, followup_id: int
) -> dict[str, Any]:
    outcome = incidents.complete_followup(
        rt, actor=principal.actor(via="rest"), ref=_ref(ref), followup_id=followup_id
    )
    return dict(outcome.data)


def get_postmortem(rt: Runtime, principal: Principal, ref: str) -> tuple[str, str]:
    return incidents.postmortem_markdown(rt, actor=principal.actor(via="rest"), ref=_ref(ref))


def create_incident(
    rt: Runtime, principal: Principal, body: IncidentCreate, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    """Declare (same flow as Slack; the outbox does the orchestration). Returns the
    incident JSON and whether it was created (False: this caller used the
    ``Idempotency-Key`` before, and its first incident is returned; another caller's key
    is a 409)."""
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
            raise InputError(
                f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.",
                field="Idempotency-Key",
            )
    if _huge_id(body.service):
        raise NotFoundError(f"Unknown service {body.service!r}.", field="service")
    data = DeclareInput(
        title=body.title,
        service=body.service,
        severity=body.severity,
        description=body.description,
        scopes=list(body.scopes),
        lead=body.lead,
        private=body.private,
        detected_at=body.detected_at,
    )
    actor = principal.actor(via="rest")
    incident, created = declare(rt, data=data, actor=actor, caller_key=idempotency_key)
    return incidents.show(rt, actor=actor, ref=incident.id, detail=False), created


def patch_incident(
    rt: Runtime, principal: Principal, ref: str, patch: IncidentPatch
) -> dict[str, Any]:
    """Apply every given field; values equal to the current ones are skipped (PATCH is
    declarative), so an empty or repeated PATCH writes nothing."""
    return incidents.edit(
        rt,
        actor=principal.actor(via="rest"),
        ref=_ref(ref),
        title=patch.title,
        description=patch.description,
        severity=patch.severity,
        lead=patch.lead,
    ).incident


def change_status(
    rt: Runtime, principal: Principal, ref: str, action: str, note: str | None
) -> dict[str, Any]:
    """acknowledge / mitigate / resolve / reopen. For resolve, ``note`` is the resolution
    summary; otherwise it is added as a timeline note. Invalid transition: ConflictError."""
    status = STATUS_FOR_ACTION[action]
    return incidents.set_status(
        rt,
        actor=principal.actor(via="rest"),
        ref=_ref(ref),
        status=status,
        summary=note if status == "RESOLVED" else None,
        note=note,
    ).incident


def add_note(rt: Runtime, principal: Principal, ref: str, text: str) -> dict[str, Any]:
    outcome = incidents.add_note(rt, actor=principal.actor(via="rest"), ref=_ref(ref), text=text)
    return dict(outcome.data)


def timeline(
    rt: Runtime, principal: Principal, ref: str, page: PageParams
) -> tuple[int, list[dict[str, Any]]]:
    return incidents.timeline(
        rt, actor=principal.actor(via="rest"), ref=_ref(ref), offset=page.offset, limit=page.size
    )


def _ref(ref: str) -> str:
    """A path reference; an empty one names no incident (404, like an unknown one)."""
    if not ref.strip():
        raise NotFoundError(f"No incident {ref}.")
    return ref


# -- alerts and KPIs -----------------------------------------------------------------


def alert_json(alert: Alert, short_id: str | None) -> dict[str, Any]:
    return {
        "id": alert.id,
        "source": alert.source,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "name": alert.name,
        "summary": alert.summary,
        "labels": alert.labels or {},
        "annotations": alert.annotations or {},
        "group_key": alert.group_key,
        "incident_key": alert.incident_key,
        "incident_id": alert.incident_id,
        "incident": short_id,
        "rule": alert.rule_name,
        "count": alert.count,
        "starts_at": _iso(alert.starts_at),
        "ends_at": _iso(alert.ends_at),
        "first_seen_at": _iso(alert.first_seen_at),
        "last_seen_at": _iso(alert.last_seen_at),
    }


def alerts(
    rt: Runtime, principal: Principal, *, filters: alert_store.AlertFilter, page: PageParams
) -> tuple[int, list[dict[str, Any]]]:
    count, rows = incidents.list_alerts(
        rt, actor=principal.actor(via="rest"), filters=filters, offset=page.offset, limit=page.size
    )
    return count, [alert_json(alert, short_id) for alert, short_id in rows]


def metrics(
    rt: Runtime, *, since: datetime | None, until: datetime | None, by: str | None
) -> dict[str, Any]:
    with rt.transaction() as session:
        return kpis.compute(session, since=since, until=until, by=by)
