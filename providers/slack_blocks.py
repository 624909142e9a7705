"""Block Kit builders for every message and view IMAS shows in Slack.

Pure functions of their inputs: the same incident view always renders the same blocks, so
an edit-in-place is idempotent. Limits that Slack enforces (header 150 chars, section
3000, button 75, 50 blocks) are respected here rather than discovered in production.

Every user- or alert-supplied string (title, description, names, notes, summaries) that
lands in mrkdwn or ``text`` goes through :func:`providers.text.slack_escape` (``esc``
below); the only mentions and links in the output are the ones built here from ids and
URLs (:func:`providers.text.mention_user`, ``channel_link``, ``link``). ``plain_text``
objects (header, buttons, options, modal labels) are not parsed by Slack and stay raw.
"""

from __future__ import annotations

from typing import Any

from bot.domain.enums import OPEN_STATUSES as DOMAIN_OPEN_STATUSES
from providers.base import SEVERITY_EMOJI, IncidentView
from providers.text import (
    channel_ref,
    is_slack_user_id,
    link,
    mention_user,
    slack_escape,
    slack_fit,
    slack_truncate,
)

esc = slack_escape

SEVERITY_CHOICES = ("SEV1_CRITICAL", "SEV2_HIGH", "SEV3_MEDIUM", "SEV4_LOW")
OPEN_STATUSES = DOMAIN_OPEN_STATUSES
STEP_LABEL = {
    "pending": "⏳ in progress",
    "done": "✅ done",
    "failed": "⚠️ failed",
    "skipped": "➖ not needed",
    "disabled": "➖ not configured",
}

ACTION_IDS = {
    "ack": "incident_ack",
    "mitigate": "incident_mitigate",
    "resolve": "incident_resolve",
    "severity": "incident_severity",
    "update": "incident_update",
    "join": "incident_join",
    "view": "incident_view",
    "reopen": "incident_reopen",
}


def _cut(text: str, limit: int) -> str:
    """Cut raw text (plain_text, input values, metadata): nothing there is escaped."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(mrkdwn: str) -> dict[str, Any]:
    """A mrkdwn text object; ``mrkdwn`` must already have its user text escaped."""
    return {"type": "mrkdwn", "text": slack_truncate(mrkdwn, 3000)}


def plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit), "emoji": True}


def button(
    text: str, action_id: str, value: str, *, style: str | None = None, url: str | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text),
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    return element


def fallback_text(view: IncidentView) -> str:
    """Notification text for clients that do not render blocks."""
    return slack_fit(f"{view.headline} ({view.severity}, {view.status}) {view.short_id}", 3000)


def _step(state: str) -> str:
    return STEP_LABEL.get(state) or esc(state)


def quick_links(view: IncidentView) -> str:
    lid = (
        link(view.lid_url, "LID Document")
        if view.lid_url
        else f"LID Document: {_step(view.lid_state)}"
    )
    runbook = link(view.runbook_url, "Runbook") if view.runbook_url else "Runbook: none"
    if view.war_room_channel_id:
        war_room = f"War Room: {channel_ref(view.war_room_channel_id)}"
    else:
        war_room = f"War Room: {_step(view.war_room_state)}"
    return f"*Quick Links:*\n• 📄 {lid}\n• 📋 {runbook}\n• 💬 {war_room}"


def action_buttons(view: IncidentView, *, include_join: bool = True) -> list[dict[str, Any]]:
    value = view.short_id
    elements = [button("🔍 View Incident", ACTION_IDS["view"], value, url=view.incident_url)]
    if view.status == "TRIGGERED":
        elements.append(button("Acknowledge", ACTION_IDS["ack"], value, style="primary"))
    if view.status in ("TRIGGERED", "ACKNOWLEDGED"):
        elements.append(button("Mitigate", ACTION_IDS["mitigate"], value))
    if view.status in OPEN_STATUSES:
        elements.append(button("Resolve", ACTION_IDS["resolve"], value, style="danger"))
        elements.append(button("Change severity", ACTION_IDS["severity"], value))
        elements.append(button("Post update", ACTION_IDS["update"], value))
    else:
        elements.append(button("Reopen", ACTION_IDS["reopen"], value))
    if include_join and view.war_room_channel_id:
        elements.append(button("Join war room", ACTION_IDS["join"], value))
    return elements


def announcement_blocks(view: IncidentView) -> list[dict[str, Any]]:
    """The seed's incident message: header, fields, description, quick links, buttons."""
    fields = [
        _text(f"*Severity:*\n{esc(view.severity)}"),
        _text(f"*Service:*\n{slack_fit(view.service_name, 1900)}"),
        _text(f"*Status:*\n{esc(view.status)}"),
        _text(f"*Team:*\n{slack_fit(view.team_name, 1900)}"),
    ]
    if view.lead_name:
        fields.append(_text(f"*Lead:*\n{slack_fit(view.lead_name, 1900)}"))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(view.headline, 150)},
        {"type": "section", "fields": fields},
        {"type": "section", "text": _text(f"*Description:*\n{esc(view.description) or '—'}")},
    ]
    if view.resolution_summary:
        blocks.append(
            {"type": "section", "text": _text(f"*Resolution:*\n{esc(view.resolution_summary)}")}
        )
    blocks.append({"type": "section", "text": _text(quick_links(view))})
    blocks.append(
        {
            "type": "context",
            "elements": [
                _text(
                    f"{esc(view.short_id)} · LID {_step(view.lid_state)} · "
                    f"war room {_step(view.war_room_state)}"
                )
            ],
        }
    )
    blocks.append(
        {"type": "actions", "block_id": "incident_actions", "elements": action_buttons(view)}
    )
    return blocks


def war_room_summary_blocks(view: IncidentView) -> list[dict[str, Any]]:
    """The pinned summary in the war room: same facts, actions without 'Join'."""
    blocks = announcement_blocks(view)
    blocks[-1] = {
        "type": "actions",
        "block_id": "incident_actions",
        "elements": action_buttons(view, include_join=False),
    }
    return blocks


def event_line(event: str, view: IncidentView, text: str | None, actor: str | None) -> str:
    """One-line thread reply for a later event on an announced incident."""
    by = f" by {slack_fit(actor, 200)}" if actor else ""
    words = {
        "created": f"{view.emoji} Incident declared{by}",
        "acknowledged": f"👀 Acknowledged{by}",
        "mitigated": f"🩹 Mitigated{by}",
        "severity_changed": f"{view.emoji} Severity changed to *{esc(view.severity)}*{by}",
        "resolved": f"✅ Resolved{by}",
        "reopened": f"🔁 Reopened{by}",
        "escalated": f"🚨 Escalated{by}",
        "status_update": f"📣 Status update{by}",
        "page": f"📟 Paged{by}",
        "test": "🧪 Test notification from IMAS",
    }
    line = words.get(event, f"{esc(event)}{by}")
    if text:
        line = f"{line}\n>{slack_fit(text, 2500)}"
    return line


def dm_blocks(notification_line: str, view: IncidentView) -> list[dict[str, Any]]:
    """A DM: ``notification_line`` is mrkdwn already escaped (:func:`event_line`)."""
    return [
        {"type": "section", "text": _text(f"{notification_line}\n*{esc(view.headline)}*")},
        {
            "type": "section",
            "fields": [
                _text(f"*Severity:*\n{esc(view.severity)}"),
                _text(f"*Status:*\n{esc(view.status)}"),
            ],
        },
        {"type": "actions", "elements": action_buttons(view)},
    ]


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, 75), "value": value}


DECLARE_CALLBACK = "declare_incident"


def declare_modal(
    *,
    services: list[str],
    scopes: list[str],
    lead_user_id: str | None,
    private_metadata: str,
    title: str = "",
    description: str = "",
) -> dict[str, Any]:
    """The declare modal: title, description, service, severity, scopes, private, lead.

    Block ids equal action ids equal the DeclareInput field names, so inline errors map
    straight back to the field (``response_action: errors``).
    """
    title_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "title",
        "max_length": 200,
    }
    if title:
        title_input["initial_value"] = _cut(title, 200)
    description_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "description",
        "multiline": True,
        "max_length": 3000,
    }
    if description:
        description_input["initial_value"] = _cut(description, 3000)
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": "title",
            "label": plain("Title", 2000),
            "element": title_input,
        },
        {
            "type": "input",
            "block_id": "description",
            "optional": True,
            "label": plain("Description", 2000),
            "element": description_input,
        },
        {
            "type": "input",
            "block_id": "service",
            "label": plain("Service", 2000),
            "element": {
                "type": "static_select",
                "action_id": "service",
                "placeholder": plain("Affected service"),
                "options": [option(name, name) for name in services[:100]],
            },
        },
        {
            "type": "input",
            "block_id": "severity",
            "label": plain("Severity", 2000),
            "element": {
                "type": "static_select",
                "action_id": "severity",
                "placeholder": plain("How bad is it?"),
                "options": [option(f"{SEVERITY_EMOJI[s]} {s}", s) for s in SEVERITY_CHOICES],
            },
        },
    ]
    if scopes:
        blocks.append(
            {
                "type": "input",
                "block_id": "scopes",
                "optional": True,
                "label": plain("Impact scopes", 2000),
                "element": {
                    "type": "multi_static_select",
                    "action_id": "scopes",
                    "placeholder": plain("Security, Legal, PR..."),
                    "options": [option(name, name) for name in scopes[:100]],
                },
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": "private",
            "optional": True,
            "label": plain("Visibility", 2000),
            "element": {
                "type": "checkboxes",
                "action_id": "private",
                "options": [
                    option("Private incident (private war room, not announced)", "private")
                ],
            },
        }
    )
    lead: dict[str, Any] = {
        "type": "users_select",
        "action_id": "lead",
        "placeholder": plain("Incident lead"),
    }
    if lead_user_id:
        lead["initial_user"] = lead_user_id
    blocks.append(
        {
            "type": "input",
            "block_id": "lead",
            "optional": True,
            "label": plain("Lead", 2000),
            "element": lead,
        }
    )
    return {
        "type": "modal",
        "callback_id": DECLARE_CALLBACK,
        "title": plain("Declare incident", 24),
        "submit": plain("Declare", 24),
        "close": plain("Cancel", 24),
        "private_metadata": _cut(private_metadata, 3000),
        "blocks": blocks,
    }


HELP_TEXT = """*IMAS — incident commands*
• `/incident` or `/incident declare [title]` — declare an incident (opens a form)
• `/incident list [mine|open|all] [SEV1..SEV4]` — list incidents
• `/incident status` — the incident of this war room
• `/incident ack` · `mitigate` · `resolve` · `reopen` — change its status (in a war room, or add the id: `/incident ack INC-A1B2C3`)
• `/incident severity <SEV1|SEV2|SEV3|SEV4>` — change its severity
• `/incident update` — post a status update · `/incident note <text>` — add a note to the timeline
• `/incident role <lead|communications|scribe> @user` — assign a role · `/incident followup <text> [@owner] [due YYYY-MM-DD]` — add a follow-up action
• `/incident oncall [team]` · `/incident page <team|@user>` — who is on call / page them
• `/incident doc` — the LID document · `/incident repair` — re-run unfinished steps · `/incident doctor` — check the set-up
React with :pushpin: to a message in a war room to add it to the timeline."""


def incident_list_text(lines: list[str], heading: str) -> str:
    """``lines`` are mrkdwn already escaped: build each with :func:`incident_list_line`."""
    if not lines:
        return f"*{slack_fit(heading, 200)}*\nNo incidents."
    return slack_truncate(f"*{slack_fit(heading, 200)}*\n" + "\n".join(lines[:30]), 3000)


def incident_list_line(
    *,
    short_id: str,
    title: str,
    severity: str,
    status: str,
    service_name: str,
    war_room_channel_id: str | None = None,
) -> str:
    """One ``/incident list`` line: ``• *INC-A1B2C3* title — SEV1, TRIGGERED, svc #room``."""
    room = f" {channel_ref(war_room_channel_id)}" if war_room_channel_id else ""
    return (
        f"• *{esc(short_id)}* {slack_fit(title, 200)} — {esc(severity)}, "
        f"{esc(status)}, {slack_fit(service_name, 100)}{room}"
    )


def incident_status_text(
    *,
    short_id: str,
    title: str,
    severity: str,
    status: str,
    service_name: str,
    lead: str | None,
    lid_url: str | None = None,
) -> str:
    """The ``/incident status`` answer (title, severity, status, service, lead, LID)."""
    text = (
        f"*{esc(short_id)}* {esc(title)} — {esc(severity)}, *{esc(status)}*, "
        f"service {esc(service_name)}, lead {esc(lead) if lead else 'nobody'}"
    )
    if lid_url:
        text += f"\nLID: {link(lid_url, 'LID document')}"
    return slack_truncate(text, 3000)


def oncall_line(team_name: str, user_id: str | None, label: str | None) -> str:
    """One ``/incident oncall`` line: ``• *Team*: <@U123>`` (else the name, else nobody)."""
    if user_id and is_slack_user_id(user_id):
        who = mention_user(user_id)
    else:
        who = slack_fit(label, 200) if label else "nobody"
    return f"• *{slack_fit(team_name, 200)}*: {who}"


def declared_text(short_id: str, title: str, severity: str) -> str:
    """The declarer's confirmation after the declare modal."""
    return slack_truncate(
        f"🚨 {esc(short_id)} declared: {esc(title)} ({esc(severity)}). "
        "The war room, the LID and the notifications are on their way.",
        3000,
    )


# -- reminders, escalation, archive, App Home, shortcuts (issue 5) ----------------------

SNOOZE_MINUTES = (30, 60, 120)
SNOOZE_ACTION_PREFIX = "reminder_snooze_"
HOME_DECLARE_ACTION = "home_declare"
DECLARE_SHORTCUT_CALLBACK = "declare_from_message"


def snooze_action_id(minutes: int) -> str:
    return f"{SNOOZE_ACTION_PREFIX}{minutes}"


def _duration(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


def reminder_text(view: IncidentView, minutes_since: int | None) -> str:
    since = f" (none for {_duration(minutes_since)})" if minutes_since else ""
    return (
        f"⏰ Time for a status update on *{esc(view.short_id)}* "
        f"({esc(view.severity)}, {esc(view.status)}){since}: post one with `/incident update` "
        "or the button below."
    )


def reminder_blocks(view: IncidentView, minutes_since: int | None) -> list[dict[str, Any]]:
    """A status-update reminder in the war room, with Post update and Snooze buttons."""
    elements = [button("Post update", ACTION_IDS["update"], view.short_id, style="primary")]
    elements += [
        button(f"Snooze {_duration(m)}", snooze_action_id(m), view.short_id) for m in SNOOZE_MINUTES
    ]
    return [
        {"type": "section", "text": _text(reminder_text(view, minutes_since))},
        {"type": "actions", "block_id": "reminder_actions", "elements": elements},
    ]


def escalation_here_text(view: IncidentView, minutes: int) -> str:
    """The team-channel escalation: everyone here, nobody acknowledged."""
    return slack_truncate(
        f"<!here> 🚨 *{esc(view.short_id)}* {slack_fit(view.title, 2000)} ({esc(view.severity)}) "
        f"has not been acknowledged for {_duration(minutes)}. Can someone take it? "
        f"{link(view.incident_url, 'Open')}",
        3000,
    )


def role_dm_text(view: IncidentView, role: str, help_text: str, assigned_by: str) -> str:
    room = (
        f" War room: {channel_ref(view.war_room_channel_id)}." if view.war_room_channel_id else ""
    )
    return slack_truncate(
        f"👋 {slack_fit(assigned_by, 200)} made you *{slack_fit(role, 100)}* of "
        f"*{esc(view.short_id)}* {slack_fit(view.title, 1500)} "
        f"({esc(view.severity)}, {esc(view.status)}).\n{esc(help_text)}{room}",
        3000,
    )


def note_text(actor: str, text: str) -> str:
    return slack_truncate(f"📝 *Note* by {slack_fit(actor, 200)}:\n>{esc(text)}", 3000)


def status_update_text(actor: str, text: str) -> str:
    body = "\n".join(f">{esc(line)}" for line in text.splitlines())
    return slack_truncate(f"📣 *Status update* by {slack_fit(actor, 200)}:\n{body}", 3000)


def final_summary_text(view: IncidentView, duration_minutes: int | None, lead: str | None) -> str:
    """The last message in a war room before it is archived."""
    lines = [f"🗄️ *{esc(view.short_id)} is resolved*: archiving this war room."]
    if view.resolution_summary:
        lines.append(f"*Resolution:* {slack_fit(view.resolution_summary, 2000)}")
    facts = [esc(view.severity), slack_fit(view.service_name, 200)]
    if duration_minutes is not None:
        facts.append(f"open for {_duration(duration_minutes)}")
    if lead:
        facts.append(f"lead {slack_fit(lead, 200)}")
    lines.append(" · ".join(facts))
    lines.append(f"Timeline and details: {link(view.incident_url, view.short_id)}")
    return slack_truncate("\n".join(lines), 3000)


def home_incident_block(view: IncidentView) -> dict[str, Any]:
    room = f" · {channel_ref(view.war_room_channel_id)}" if view.war_room_channel_id else ""
    lock = "🔒 " if view.private else ""
    return {
        "type": "section",
        "text": _text(
            f"{view.emoji} {lock}*{esc(view.short_id)}* {slack_fit(view.title, 150)}\n"
            f"{esc(view.severity)} · *{esc(view.status)}* · {slack_fit(view.service_name, 200)}"
            f"{room}"
        ),
        "accessory": button("View", ACTION_IDS["view"], view.short_id, url=view.incident_url),
    }


def home_view(mine: list[IncidentView], others: list[IncidentView]) -> dict[str, Any]:
    """The App Home tab: a Declare button, then open incidents, the user's first."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain("🚨 Incidents", 150)},
        {
            "type": "actions",
            "block_id": "home_actions",
            "elements": [
                button("Declare incident", HOME_DECLARE_ACTION, "declare", style="danger")
            ],
        },
    ]
    budget = 90  # Slack allows 100 blocks in a Home tab
    for heading, views in (("Yours", mine), ("Other open incidents", others)):
        blocks.append({"type": "divider"})
        blocks.append({"type": "section", "text": _text(f"*{esc(heading)}*")})
        if not views:
            blocks.append({"type": "context", "elements": [_text("Nothing open.")]})
        for view in views:
            if len(blocks) >= budget:
                break
            blocks.append(home_incident_block(view))
    return {"type": "home", "blocks": blocks[:100]}
