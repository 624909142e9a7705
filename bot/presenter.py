"""Turn stored incidents into the views providers render and the JSON the API/CLI print."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.outbox_kinds import OutboxKind
from bot.runtime import Runtime
from providers.base import IncidentView
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.models import Incident, OutboxItem

STEP_STATE = {"done": "done", "dead": "failed"}


def step_state(items: list[OutboxItem], kind: str, *, default: str) -> str:
    rows = [item for item in items if item.kind == kind]
    if not rows:
        return default
    return STEP_STATE.get(rows[-1].state, "pending")


def incident_url(rt: Runtime, incident: Incident) -> str:
    """The incident's page in the web dashboard (the "View incident" link of every message)."""
    return f"{rt.settings.base_url}/dashboard/incidents/{incident.short_id}/"


def view_of(session: Session, rt: Runtime, incident: Incident) -> IncidentView:
    items = outbox_store.for_incident(session, incident_id=incident.id)
    lid_default = "disabled" if not rt.settings.google_enabled else "pending"
    team = incident.team
    return IncidentView(
        id=incident.id,
        short_id=incident.short_id,
        title=incident.title,
        description=incident.description or "",
        severity=incident.severity,
        status=incident.status,
        service_name=incident.service.name,
        team_name=team.name if team else "—",
        lead_name=incident.lead.label if incident.lead else None,
        lead_email=incident.lead.email if incident.lead else None,
        incident_url=incident_url(rt, incident),
        created_at=incident.created_at,
        runbook_url=incident.service.runbook_url,
        lid_url=incident.lid_url,
        war_room_channel_id=incident.war_room_channel_id,
        war_room_url=incident.war_room_url,
        resolution_summary=incident.resolution_summary,
        private=incident.private,
        lid_state="done"
        if incident.lid_url
        else step_state(items, OutboxKind.LID, default=lid_default),
        war_room_state="done"
        if incident.war_room_channel_id
        else step_state(items, OutboxKind.WAR_ROOM, default="skipped"),
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def incident_json(
    session: Session, rt: Runtime, incident: Incident, *, detail: bool = False
) -> dict[str, Any]:
    """The incident as the API and ``imas incident list/show --json`` print it."""
    data: dict[str, Any] = {
        "id": incident.id,
        "short_id": incident.short_id,
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity,
        "status": incident.status,
        "private": incident.private,
        "source": incident.source,
        "service": incident.service.name,
        "service_id": incident.service_id,
        "team": incident.team.name if incident.team else None,
        "lead": incident.lead.label if incident.lead else None,
        "declared_by": incident.declared_by.label if incident.declared_by else None,
        "scopes": [scope.name for scope in incident.scopes],
        "roles": {role.role: role.person.label for role in incident.roles},
        "lid_url": incident.lid_url,
        "war_room_channel_id": incident.war_room_channel_id,
        "war_room_url": incident.war_room_url,
        "resolution_summary": incident.resolution_summary,
        "url": incident_url(rt, incident),
        "detected_at": _iso(incident.detected_at),
        "created_at": _iso(incident.created_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "mitigated_at": _iso(incident.mitigated_at),
        "resolved_at": _iso(incident.resolved_at),
        "lid_synced_at": _iso(incident.lid_synced_at),
    }
    if detail:
        data["timeline"] = [
            {
                "at": _iso(event.at),
                "type": event.type,
                "message": event.message,
                "actor": event.actor,
                "source": event.source,
            }
            for event in incident_store.timeline(session, incident_id=incident.id)
        ]
        data["deliveries"] = [
            {
                "kind": item.kind,
                "event": item.event,
                "provider": item.provider_name,
                "recipient": f"{item.recipient_kind}:{item.recipient}"
                if item.recipient_kind
                else None,
                "state": item.state,
                "attempts": item.attempts,
                "last_error": item.last_error,
                "next_attempt_at": _iso(item.next_attempt_at)
                if item.state in ("pending", "failed")
                else None,
            }
            for item in outbox_store.for_incident(session, incident_id=incident.id)
        ]
    return data
