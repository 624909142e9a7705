"""Modal submissions: declare an incident, resolve with a summary, post a status update."""

from __future__ import annotations

import json
import logging
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.domain.errors import ImasError, InputError
from bot.flows import incidents
from bot.flows.declare import DeclareInput, declare, validate
from bot.runtime import Runtime
from handlers.slack.common import actor_from, in_background
from providers.slack_blocks import DECLARE_CALLBACK, declared_text

log = logging.getLogger(__name__)
RESOLVE_CALLBACK = "resolve_incident"
UPDATE_CALLBACK = "status_update"
SEVERITY_CALLBACK = "change_severity"


def state_value(values: dict[str, Any], block: str) -> Any:
    """The submitted value of input ``block`` (its action id equals its block id)."""
    element = (values.get(block) or {}).get(block) or {}
    kind = element.get("type")
    if kind in ("static_select", "external_select", "radio_buttons"):
        selected = element.get("selected_option")
        return selected.get("value") if selected else None
    if kind in ("multi_static_select", "checkboxes"):
        return [o.get("value") for o in element.get("selected_options") or []]
    if kind == "users_select":
        return element.get("selected_user")
    return element.get("value")


def parse_declare(view: dict[str, Any]) -> DeclareInput:
    values = view.get("state", {}).get("values", {})
    return DeclareInput(
        title=(state_value(values, "title") or "").strip(),
        description=(state_value(values, "description") or "").strip(),
        service=state_value(values, "service") or "",
        severity=state_value(values, "severity") or "",
        scopes=list(state_value(values, "scopes") or []),
        lead=state_value(values, "lead"),
        private="private" in (state_value(values, "private") or []),
    )


def register(app: App, rt: Runtime, background: Executor) -> None:
    @app.view(DECLARE_CALLBACK)
    def declare_submission(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        view = body["view"]
        data = parse_declare(view)
        errors = validate(data)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        metadata = json.loads(view.get("private_metadata") or "{}")
        actor = actor_from(body, str(metadata.get("via") or "modal"))
        try:
            incident, created = declare(
                rt, data=data, actor=actor, idempotency_key=f"slack-view:{view['id']}"
            )
        except InputError as exc:
            ack(response_action="errors", errors={exc.field or "title": exc.message})
            return
        except ImasError as exc:  # e.g. PermissionDeniedError: shown on the form
            ack(response_action="errors", errors={"title": str(exc)})
            return
        ack()
        if created and actor.slack_user_id:
            in_background(
                background,
                _confirm,
                client,
                actor.slack_user_id,
                metadata.get("channel_id"),
                declared_text(incident.short_id, incident.title, incident.severity),
            )

    @app.view(RESOLVE_CALLBACK)
    def resolve_submission(ack: Ack, body: dict[str, Any]) -> None:
        view = body["view"]
        values = view.get("state", {}).get("values", {})
        summary = (state_value(values, "summary") or "").strip()
        if not summary:
            ack(response_action="errors", errors={"summary": "Please summarise the resolution."})
            return
        _lifecycle_submission(
            ack,
            rt,
            body,
            lambda ref, actor: incidents.set_status(
                rt, actor=actor, ref=ref, status="RESOLVED", summary=summary
            ),
            "summary",
        )

    @app.view(UPDATE_CALLBACK)
    def update_submission(ack: Ack, body: dict[str, Any]) -> None:
        values = body["view"].get("state", {}).get("values", {})
        text = (state_value(values, "status_text") or "").strip()
        impact = (state_value(values, "impact") or "").strip() or None
        minutes_raw = state_value(values, "next_update") or ""
        try:
            minutes = int(minutes_raw) if minutes_raw else None
        except ValueError:
            ack(response_action="errors", errors={"next_update": "A number of minutes, e.g. 30."})
            return
        _lifecycle_submission(
            ack,
            rt,
            body,
            lambda ref, actor: incidents.post_update(
                rt,
                actor=actor,
                ref=ref,
                text=text,
                impact=impact,
                next_update_minutes=minutes,
            ),
            "status_text",
        )

    @app.view(SEVERITY_CALLBACK)
    def severity_submission(ack: Ack, body: dict[str, Any]) -> None:
        values = body["view"].get("state", {}).get("values", {})
        severity = state_value(values, "severity") or ""
        reason = (state_value(values, "reason") or "").strip() or None
        _lifecycle_submission(
            ack,
            rt,
            body,
            lambda ref, actor: incidents.change_severity(
                rt, actor=actor, ref=ref, severity=severity, reason=reason
            ),
            "severity",
        )


def _lifecycle_submission(
    ack: Ack, rt: Runtime, body: dict[str, Any], change: Any, field: str
) -> None:
    metadata = json.loads(body["view"].get("private_metadata") or "{}")
    try:
        change(str(metadata.get("incident") or ""), actor_from(body, "modal"))
    except ImasError as exc:
        ack(response_action="errors", errors={field: getattr(exc, "message", str(exc))})
        return
    ack()


def _confirm(client: WebClient, user_id: str, channel_id: str | None, text: str) -> None:
    if channel_id:
        try:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
            return
        except Exception:  # the bot may not be in that channel: fall back to a DM
            log.debug("ephemeral confirmation failed in %s; sending a DM", channel_id)
    client.chat_postMessage(channel=user_id, text=text)
