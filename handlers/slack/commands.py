"""``/incident`` and its subcommands.

Database work happens before the ack (it is fast, and its result is the ephemeral
answer); anything that calls Slack (opening a modal) happens right after the ack.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import ImasError
from bot.flows import lifecycle
from bot.runtime import Runtime
from bot.settings import SEVERITIES
from handlers.slack.common import actor_from, error_text, find_incident, in_background
from providers.slack_blocks import HELP_TEXT, declare_modal, incident_list_text
from storage import catalog
from storage import incidents as incident_store
from storage.incidents import IncidentFilter

INCIDENT_REF = re.compile(r"\bINC-[0-9A-Fa-f]{6}\b")
SEVERITY_ALIASES = {s.split("_")[0]: s for s in SEVERITIES} | {s: s for s in SEVERITIES}


def register(app: App, rt: Runtime, background: Executor) -> None:
    @app.command("/incident")
    def incident_command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        text = (body.get("text") or "").strip()
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        try:
            if sub in ("", "declare", "new"):
                ack()
                in_background(background, open_declare_modal, rt, client, body, rest.strip())
                return
            handler = SUBCOMMANDS.get(sub)
            if handler is None:
                ack(text=(f"Unknown subcommand `{sub}`.\n" if sub != "help" else "") + HELP_TEXT)
                return
            answer = handler(rt, body, rest.strip())
        except ImasError as exc:
            ack(text=error_text(exc))
            return
        rt.wake_outbox()
        ack(text=answer)


def open_declare_modal(rt: Runtime, client: WebClient, body: dict[str, Any], title: str) -> None:
    with rt.transaction() as session:
        services = [s.name for s in catalog.list_services(session, active_only=True)]
        scopes = [s.name for s in catalog.list_scopes(session)]
    if not services:
        client.chat_postEphemeral(
            channel=body.get("channel_id"), user=body.get("user_id"),
            text="No service is configured yet: add one with `imas config apply FILE.yml`.")
        return
    metadata = json.dumps({"channel_id": body.get("channel_id")})
    client.views_open(trigger_id=body["trigger_id"],
                      view=declare_modal(services=services, scopes=scopes,
                                         lead_user_id=body.get("user_id"),
                                         private_metadata=metadata, title=title))


def _ref(rest: str) -> str | None:
    match = INCIDENT_REF.search(rest)
    return match.group(0).upper() if match else None


def _status(status: str) -> Any:
    def handler(rt: Runtime, body: dict[str, Any], rest: str) -> str:
        incident = find_incident(rt, ref=_ref(rest), channel_id=body.get("channel_id"))
        summary = INCIDENT_REF.sub("", rest).strip() or None
        with rt.transaction() as session:
            fresh = lifecycle.get_or_404(session, incident.id)
            lifecycle.change_status(session, rt, incident=fresh, status=status,
                                    actor=actor_from(body, "command"), summary=summary)
            return f"{fresh.short_id} is now {fresh.status}."
    return handler


def _severity(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    words = INCIDENT_REF.sub("", rest).split()
    severity = SEVERITY_ALIASES.get(words[0].upper()) if words else None
    if severity is None:
        return f"Usage: `/incident severity <{'|'.join(s.split('_')[0] for s in SEVERITIES)}>`"
    incident = find_incident(rt, ref=_ref(rest), channel_id=body.get("channel_id"))
    with rt.transaction() as session:
        fresh = lifecycle.get_or_404(session, incident.id)
        lifecycle.change_severity(session, rt, incident=fresh, severity=severity,
                                  actor=actor_from(body, "command"))
        return f"{fresh.short_id} is now {fresh.severity}."


def _note(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    incident = find_incident(rt, ref=_ref(rest), channel_id=body.get("channel_id"))
    with rt.transaction() as session:
        fresh = lifecycle.get_or_404(session, incident.id)
        lifecycle.add_note(session, rt, incident=fresh, text=INCIDENT_REF.sub("", rest, count=1).strip(),
                           actor=actor_from(body, "command"))
    return f"Note added to the timeline of {incident.short_id}."


def _role(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    match = re.match(r"(\w+)\s+<@(\w+)(?:\|[^>]*)?>", INCIDENT_REF.sub("", rest).strip())
    if not match:
        return f"Usage: `/incident role <{'|'.join(lifecycle.ROLES)}> @user`"
    incident = find_incident(rt, ref=_ref(rest), channel_id=body.get("channel_id"))
    with rt.transaction() as session:
        fresh = lifecycle.get_or_404(session, incident.id)
        lifecycle.assign_role(session, rt, incident=fresh, role=match.group(1), person_ref=match.group(2),
                              actor=actor_from(body, "command"))
    return f"<@{match.group(2)}> is now {match.group(1).lower()} of {incident.short_id}."


def _show(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    incident = find_incident(rt, ref=_ref(rest), channel_id=body.get("channel_id"))
    with rt.transaction() as session:
        fresh = lifecycle.get_or_404(session, incident.id)
        lead = fresh.lead.label if fresh.lead else "nobody"
        return (f"*{fresh.short_id}* {fresh.title} — {fresh.severity}, *{fresh.status}*, "
                f"service {fresh.service.name}, lead {lead}"
                + (f"\nLID: {fresh.lid_url}" if fresh.lid_url else ""))


def _doc(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    incident = find_incident(rt, ref=_ref(rest), channel_id=body.get("channel_id"))
    if incident.lid_url:
        return f"📄 LID of {incident.short_id}: {incident.lid_url}"
    return f"{incident.short_id} has no LID document yet (Google not configured, or still being created)."


def _list(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    words = rest.lower().split()
    filters = IncidentFilter(open_only="all" not in words)
    severities = [SEVERITY_ALIASES[w.upper()] for w in words if w.upper() in SEVERITY_ALIASES]
    if severities:
        filters.severity = severities
    with rt.transaction() as session:
        user_id = body.get("user_id")
        me = catalog.get_person(session, ref=user_id) if user_id else None
        if "mine" in words:
            filters.involving_person_id = me.id if me else -1
        _total, rows = incident_store.list_incidents(session, filters=filters, limit=30)
        lines = []
        for incident in rows:
            if incident.private and not (me and me.id in (incident.lead_id, incident.declared_by_id)):
                continue
            room = f" <#{incident.war_room_channel_id}>" if incident.war_room_channel_id else ""
            lines.append(f"• *{incident.short_id}* {incident.title} — {incident.severity}, "
                         f"{incident.status}, {incident.service.name}{room}")
    heading = "Open incidents" if filters.open_only else "Incidents"
    return incident_list_text(lines, heading)


def _oncall(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    with rt.transaction() as session:
        teams = catalog.list_teams(session)
        if rest:
            teams = [t for t in teams if t.name.lower() == rest.lower()]
            if not teams:
                return f"No team named {rest!r}."
        lines = []
        for team in teams:
            person = team.current_on_call
            who = (f"<@{person.slack_user_id}>" if person and person.slack_user_id
                   else person.label if person else "nobody")
            lines.append(f"• *{team.name}*: {who}")
    return "*On call*\n" + ("\n".join(lines) if lines else "No teams configured.")


SUBCOMMANDS = {
    "list": _list,
    "status": _show,
    "show": _show,
    "ack": _status("ACKNOWLEDGED"),
    "acknowledge": _status("ACKNOWLEDGED"),
    "mitigate": _status("MITIGATED"),
    "resolve": _status("RESOLVED"),
    "reopen": _status("TRIGGERED"),
    "severity": _severity,
    "note": _note,
    "role": _role,
    "doc": _doc,
    "oncall": _oncall,
    "help": lambda rt, body, rest: HELP_TEXT,
}
