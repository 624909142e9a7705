"""``/incident`` and its subcommands.

Database work happens before the ack (it is fast, and its result is the ephemeral
answer); anything that calls Slack (opening a modal) happens right after the ack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot.access import Action
from bot.doctor import run_checks
from bot.domain.enums import INCIDENT_ROLES, SEVERITIES, SEVERITY_ALIASES, parse_severity
from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.flows.repair import RepairReport
from bot.runtime import Runtime
from handlers.slack import oncall as slack_oncall
from handlers.slack.actions import update_modal
from handlers.slack.command_table import HELP_TEXT
from handlers.slack.common import (
    actor_from,
    error_text,
    in_background,
    require_allowed,
)
from handlers.slack.outage import unavailable_modal
from providers.slack_blocks import (
    declare_modal,
    incident_list_line,
    incident_list_text,
    incident_status_text,
)
from providers.text import link, mention_user, slack_escape, slack_unescape
from storage import catalog
from storage.db import UNAVAILABLE_ERRORS
from storage.incidents import IncidentFilter

INCIDENT_REF = re.compile(r"\bINC-[0-9A-Fa-f]{6}\b")


def register(app: App, rt: Runtime, background: Executor) -> None:
    @app.command("/incident")
    def incident_command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        text = (body.get("text") or "").strip()
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        try:
            if sub in ("", "declare", "new"):
                ack()
                in_background(
                    background, open_declare_modal, rt, client, body, slack_unescape(rest.strip())
                )
                return
            handler = SUBCOMMANDS.get(sub)
            if handler is None:
                unknown = f"Unknown subcommand `{slack_escape(sub)}`.\n" if sub != "help" else ""
                ack(text=unknown + HELP_TEXT)
                return
            answer = handler(rt, body, rest.strip())
        except ImasError as exc:
            ack(text=error_text(exc))
            return
        rt.wake_outbox()
        if isinstance(answer, AfterAck):
            ack(text=answer.text or "")
            in_background(background, answer.work, client, body)
            return
        ack(text=answer)


def open_declare_modal(rt: Runtime, client: WebClient, body: dict[str, Any], title: str) -> None:
    try:
        with rt.reading() as session:
            services = [s.name for s in catalog.list_services(session, active_only=True)]
            scopes = [s.name for s in catalog.list_scopes(session)]
    except UNAVAILABLE_ERRORS:
        client.views_open(trigger_id=body["trigger_id"], view=unavailable_modal())
        return
    if not services:
        client.chat_postEphemeral(
            channel=body.get("channel_id"),
            user=body.get("user_id"),
            text="No service is configured yet: add one with `imas config apply FILE.yml`.",
        )
        return
    metadata = json.dumps({"channel_id": body.get("channel_id")})
    client.views_open(
        trigger_id=body["trigger_id"],
        view=declare_modal(
            services=services,
            scopes=scopes,
            lead_user_id=body.get("user_id"),
            private_metadata=metadata,
            title=title,
        ),
    )


def _ref(rest: str) -> str | None:
    match = INCIDENT_REF.search(rest)
    return match.group(0).upper() if match else None


def _where(body: dict[str, Any], rest: str) -> dict[str, Any]:
    """The incident named in ``rest``, else the war room the command was typed in."""
    return {"ref": _ref(rest), "channel_id": body.get("channel_id")}


def _status(status: str) -> Any:
    def handler(rt: Runtime, body: dict[str, Any], rest: str) -> str:
        # Slack sends command text with &, < and > escaped: store what the person typed.
        summary = slack_unescape(INCIDENT_REF.sub("", rest).strip()) or None
        outcome = incidents.set_status(
            rt,
            actor=actor_from(body, "command"),
            status=status,
            summary=summary,
            **_where(body, rest),
        )
        return slack_escape(outcome.message)

    return handler


def _severity(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    words = INCIDENT_REF.sub("", rest).split()
    if not words:
        return f"Usage: `/incident severity <{'|'.join(s.split('_')[0] for s in SEVERITIES)}>`"
    outcome = incidents.change_severity(
        rt, actor=actor_from(body, "command"), severity=words[0], **_where(body, rest)
    )
    return slack_escape(outcome.message)


def _note(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    outcome = incidents.add_note(
        rt,
        actor=actor_from(body, "command"),
        text=slack_unescape(INCIDENT_REF.sub("", rest, count=1).strip()),
        **_where(body, rest),
    )
    return slack_escape(outcome.message)


def _role(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    match = re.match(r"(\w+)\s+<@(\w+)(?:\|[^>]*)?>", INCIDENT_REF.sub("", rest).strip())
    if not match:
        return f"Usage: `/incident role <{'|'.join(INCIDENT_ROLES)}> @user`"
    outcome = incidents.assign_role(
        rt,
        actor=actor_from(body, "command"),
        role=match.group(1),
        person=match.group(2),
        **_where(body, rest),
    )
    return f"{mention_user(match.group(2))} is now {slack_escape(outcome.message.split(' is now ', 1)[1])}"


_FOLLOWUP_OWNER = re.compile(r"<@(\w+)(?:\|[^>]*)?>")
_FOLLOWUP_DUE = re.compile(r"(?:^|\s)(?:due\s+)?(\d{4}-\d{2}-\d{2})\s*$")


def _followup(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    """``/incident followup <text> [@owner] [due YYYY-MM-DD] [INC-…]``, or
    ``/incident followup done <#N> [INC-…]``."""
    text = INCIDENT_REF.sub("", rest, count=1)
    done = re.fullmatch(r"\s*done\s+#?(\d{1,9})\s*", text)
    if done:
        outcome = incidents.complete_followup(
            rt,
            actor=actor_from(body, "command"),
            followup_id=int(done.group(1)),
            **_where(body, rest),
        )
        return slack_escape(outcome.message)
    owner = _FOLLOWUP_OWNER.search(text)
    text = _FOLLOWUP_OWNER.sub("", text)
    due = _FOLLOWUP_DUE.search(text)
    text = _FOLLOWUP_DUE.sub("", text) if due else text
    title = slack_unescape(" ".join(text.split()))
    if not title:
        return "Usage: `/incident followup <text> [@owner] [due YYYY-MM-DD]`"
    outcome = incidents.add_followup(
        rt,
        actor=actor_from(body, "command"),
        title=title,
        owner=owner.group(1) if owner else None,
        due=due.group(1) if due else None,
        **_where(body, rest),
    )
    return slack_escape(outcome.message)


def _show(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    data = incidents.show(rt, actor=actor_from(body, "command"), detail=False, **_where(body, rest))
    return incident_status_text(
        short_id=data["short_id"],
        title=data["title"],
        severity=data["severity"],
        status=data["status"],
        service_name=data["service"],
        lead=data["lead"],
        lid_url=data["lid_url"],
    )


def _doc(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    data = incidents.show(rt, actor=actor_from(body, "command"), detail=False, **_where(body, rest))
    if data["lid_url"]:
        return f"📄 LID of {data['short_id']}: {link(data['lid_url'], 'the incident document')}"
    return (
        f"{data['short_id']} has no LID document yet "
        "(Google not configured, or still being created)."
    )


def _list(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    words = rest.lower().split()
    filters = IncidentFilter(open_only="all" not in words)
    severities = [parse_severity(w).value for w in words if w.upper() in SEVERITY_ALIASES]
    if severities:
        filters.severity = severities
    actor = actor_from(body, "command")
    if "mine" in words:
        filters.involving_person_id = incidents.person_id(rt, actor=actor)
    _total, rows = incidents.list_incidents(rt, actor=actor, filters=filters, limit=30)
    lines = []
    for data in rows:
        lines.append(
            incident_list_line(
                short_id=data["short_id"],
                title=data["title"],
                severity=data["severity"],
                status=data["status"],
                service_name=data["service"],
                war_room_channel_id=data["war_room_channel_id"],
            )
        )
    heading = "Open incidents" if filters.open_only else "Incidents"
    return incident_list_text(lines, heading)


def _oncall(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    # Who is on call (the schedule engine), or ``override @x 2h [team]``: handlers/slack/oncall.py
    return slack_oncall.answer(rt, body, rest)


# -- subcommands added for issue 5: update, page, repair, doctor -------------------------


@dataclass(frozen=True)
class AfterAck:
    """A subcommand's answer whose Slack work (``work(client, body)``: a modal, a slow
    check) runs right after the ack, in the background pool."""

    text: str | None
    work: Callable[[WebClient, dict[str, Any]], None]


def _update(rt: Runtime, body: dict[str, Any], rest: str) -> AfterAck:
    short_id = require_allowed(rt, actor_from(body, "command"), Action.UPDATE, **_where(body, rest))

    def open_modal(client: WebClient, body: dict[str, Any]) -> None:
        client.views_open(trigger_id=body["trigger_id"], view=update_modal(short_id))

    return AfterAck(None, open_modal)


def _page_target(rt: Runtime, text: str) -> tuple[str, str | None]:
    """(target, reason) from ``<@U123|name> reason`` or ``Team Name reason``."""
    mention = re.match(r"<@(\w+)(?:\|[^>]*)?>\s*(.*)", text, re.DOTALL)
    if mention:
        return mention.group(1), mention.group(2).strip() or None
    with rt.reading() as session:
        names = sorted((t.name for t in catalog.list_teams(session)), key=len, reverse=True)
    for name in names:
        if text.lower() == name.lower() or text.lower().startswith(name.lower() + " "):
            return name, text[len(name) :].strip() or None
    return text, None


def _page(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    text = INCIDENT_REF.sub("", rest, count=1).strip()
    if not text:
        return "Usage: `/incident page <team|@user> [reason]`"
    target, reason = _page_target(rt, text)
    outcome = incidents.page(
        rt, actor=actor_from(body, "command"), target=target, reason=reason, **_where(body, rest)
    )
    return slack_escape(outcome.message)


STEP_NAMES = {
    "war_room": "War room",
    "lid": "LID document",
    "lid_sync": "LID sync",
    "slack_post": "Message",
    "pin_fetch": "Pinned message",
    "archive": "Archive",
}
STATE_ICONS = {"done": "✅", "pending": "⏳", "in_flight": "⏳", "failed": "⚠️", "dead": "❌"}


def _repair(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    outcome = incidents.repair(rt, actor=actor_from(body, "command"), **_where(body, rest))
    report: RepairReport = outcome.data
    lines = [f"🔧 *{outcome.incident['short_id']}*: {report.retried} failed step(s) queued again."]
    for item in report.steps:
        if item.kind == "refresh":
            continue
        name = STEP_NAMES.get(item.kind, item.kind)
        if item.kind == "notify":
            name = f"Notify {item.event} → {item.provider_name} {item.recipient or ''}".strip()
        error = f" — {item.last_error[:120]}" if item.last_error and item.state != "done" else ""
        lines.append(
            f"{STATE_ICONS.get(item.state, '•')} {slack_escape(name)}: {item.state}"
            f"{slack_escape(error)}"
        )
    for task in report.tasks:
        when = f" (due {task.due_at:%Y-%m-%d %H:%M} UTC)" if task.state == "scheduled" else ""
        lines.append(f"🕒 {task.kind}: {task.state}{when}")
    if len(lines) > 40:
        lines = [*lines[:39], f"… and {len(lines) - 39} more"]
    return "\n".join(lines)


def _doctor(rt: Runtime, body: dict[str, Any], rest: str) -> AfterAck:  # noqa: ARG001
    def run(client: WebClient, body: dict[str, Any]) -> None:  # noqa: ARG001
        checks = run_checks(rt)
        ok = all(check.ok for check in checks)
        lines = [
            f"{'❌' if not c.ok else '⚠️' if c.warning else '✅'} "
            f"*{slack_escape(c.name)}*: {slack_escape(c.detail)}"
            for c in checks
        ]
        heading = "🩺 All checks passed" if ok else "🩺 Some checks failed"
        WebhookClient(body["response_url"]).send(
            text=heading + "\n" + "\n".join(lines), response_type="ephemeral"
        )

    return AfterAck("🩺 Running the checks…", run)


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
    "followup": _followup,
    "doc": _doc,
    "oncall": _oncall,
    "help": lambda rt, body, rest: HELP_TEXT,
    "update": _update,
    "page": _page,
    "repair": _repair,
    "doctor": _doctor,
}
