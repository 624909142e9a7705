"""What each REST route does, between parsing and responding: one transaction, one call
into a flow or a storage query, the JSON of the result. Every function takes the caller's
``Principal``: private incidents exist only for managers and admins (others get 404, as
if they did not exist), and changes are made with ``principal.actor()`` (source "api").

Errors are ``bot.domain.errors`` exceptions (InputError 400, NotFoundError 404, ConflictError
409), mapped to JSON by ``handlers.api.install``; a rejected change writes nothing (its
transaction is rolled back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import kpis
from bot.domain.errors import InputError, NotFoundError
from bot.flows import lifecycle
from bot.flows.declare import DeclareInput, declare
from bot.presenter import incident_json
from bot.runtime import Runtime
from handlers.api.auth import Principal
from handlers.api.pages import PageParams
from handlers.api.schemas import IncidentCreate, IncidentPatch
from storage import alerts as alert_store
from storage import catalog
from storage import incidents as incident_store
from storage.models import Alert, Incident, TimelineEvent

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


def visible_incident(session: Session, principal: Principal, ref: str) -> Incident:
    """The incident by id or short id, if this principal may see it; else NotFoundError."""
    incident = None
    if ref.strip() and not _huge_id(ref):
        incident = incident_store.get_incident(session, ref=ref)
    if incident is None or (incident.private and not principal.at_least("manager")):
        raise NotFoundError(f"No incident {ref}.")
    return incident


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


def list_incidents(
    rt: Runtime, principal: Principal, *, filters: incident_store.IncidentFilter, page: PageParams
) -> tuple[int, list[dict[str, Any]]]:
    filters.include_private = principal.at_least("manager")
    if _huge_id(filters.service) or _huge_id(filters.team):
        return 0, []
    with rt.transaction() as session:
        count, rows = incident_store.list_incidents(
            session, filters=filters, offset=page.offset, limit=page.size
        )
        return count, [incident_json(session, rt, incident) for incident in rows]


def get_incident(rt: Runtime, principal: Principal, ref: str) -> dict[str, Any]:
    with rt.transaction() as session:
        return incident_json(session, rt, visible_incident(session, principal, ref), detail=True)


def create_incident(
    rt: Runtime, principal: Principal, body: IncidentCreate, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    """Declare (same flow as Slack; the outbox does the orchestration). Returns the
    incident JSON and whether it was created (False: the ``Idempotency-Key`` was used
    before, and the first incident is returned)."""
    key = None
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
            raise InputError(
                f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.",
                field="Idempotency-Key",
            )
        key = f"api:{idempotency_key}"
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
    incident, created = declare(
        rt, data=data, actor=principal.actor(via="rest"), idempotency_key=key
    )
    with rt.transaction() as session:
        fresh = lifecycle.get_or_404(session, incident.id)
        return incident_json(session, rt, fresh), created


def patch_incident(
    rt: Runtime, principal: Principal, ref: str, patch: IncidentPatch
) -> dict[str, Any]:
    """Apply every given field; values equal to the current ones are skipped (PATCH is
    declarative), so an empty or repeated PATCH writes nothing."""
    actor = principal.actor(via="rest")
    with rt.transaction() as session:
        incident = visible_incident(session, principal, ref)
        lifecycle.update_details(
            session,
            rt,
            incident=incident,
            actor=actor,
            title=patch.title,
            description=patch.description,
        )
        if patch.severity is not None and patch.severity != incident.severity:
            lifecycle.change_severity(
                session, rt, incident=incident, severity=patch.severity, actor=actor
            )
        if patch.lead is not None:
            current = incident.lead
            if current is None or patch.lead.lower() not in (
                (current.email or "").lower(),
                (current.slack_user_id or "").lower(),
            ):
                lifecycle.assign_role(
                    session, rt, incident=incident, role="lead", person_ref=patch.lead, actor=actor
                )
        session.flush()
        session.expire(incident)  # reload relationships changed through their ids
        data = incident_json(session, rt, incident)
    rt.wake_outbox()
    return data


def change_status(
    rt: Runtime, principal: Principal, ref: str, action: str, note: str | None
) -> dict[str, Any]:
    """acknowledge / mitigate / resolve / reopen. For resolve, ``note`` is the resolution
    summary; otherwise it is added as a timeline note. Invalid transition: ConflictError."""
    actor = principal.actor(via="rest")
    status = STATUS_FOR_ACTION[action]
    with rt.transaction() as session:
        incident = visible_incident(session, principal, ref)
        lifecycle.change_status(
            session,
            rt,
            incident=incident,
            status=status,
            actor=actor,
            summary=note if status == "RESOLVED" else None,
        )
        if note and status != "RESOLVED":
            lifecycle.add_note(session, rt, incident=incident, text=note, actor=actor)
        session.flush()
        session.expire(incident)  # reload relationships changed through their ids
        data = incident_json(session, rt, incident)
    rt.wake_outbox()
    return data


def event_json(event: TimelineEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _iso(event.at),
        "type": event.type,
        "message": event.message,
        "actor": event.actor,
        "source": event.source,
        "data": event.data or {},
    }


def add_note(rt: Runtime, principal: Principal, ref: str, text: str) -> dict[str, Any]:
    with rt.transaction() as session:
        incident = visible_incident(session, principal, ref)
        event = lifecycle.add_note(
            session, rt, incident=incident, text=text, actor=principal.actor(via="rest")
        )
        data = event_json(event)
    rt.wake_outbox()
    return data


def timeline(
    rt: Runtime, principal: Principal, ref: str, page: PageParams
) -> tuple[int, list[dict[str, Any]]]:
    with rt.transaction() as session:
        incident = visible_incident(session, principal, ref)
        events = incident_store.timeline(session, incident_id=incident.id)
        return len(events), [event_json(e) for e in events[page.offset : page.offset + page.size]]


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
    rt: Runtime, *, filters: alert_store.AlertFilter, page: PageParams
) -> tuple[int, list[dict[str, Any]]]:
    with rt.transaction() as session:
        count, rows = alert_store.list_alerts(
            session, filters=filters, offset=page.offset, limit=page.size
        )
        return count, [alert_json(alert, short_id) for alert, short_id in rows]


def metrics(
    rt: Runtime, *, since: datetime | None, until: datetime | None, by: str | None
) -> dict[str, Any]:
    with rt.transaction() as session:
        return kpis.compute(session, since=since, until=until, by=by)
