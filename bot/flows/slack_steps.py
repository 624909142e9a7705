"""Outbox steps for the Slack side of running an incident (issue 5).

* ``slack_post``: one message in a channel, the war room or a DM (role DMs, notes and
  status updates in the war room, reminders, ``@here`` escalations);
* ``pin_fetch``: fetch the text of a message pinned with 📌 into the timeline;
* ``archive``: the final summary message, then ``conversations.archive``.

Flows enqueue these with :func:`enqueue_post` and friends, in their own transaction;
nothing here runs before the transaction commits. Every step is re-runnable: a post
carries the outbox key in its message metadata and a retry looks for it first, in the
channel's history (the DM channel's for a person) since the step first started.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import audit
from bot.domain.actor import SYSTEM
from bot.domain.errors import Defer, PermanentProviderError
from bot.outbox_kinds import (
    OutboxKind,
    archive_key,
    pin_fetch_key,
    refresh_key,
    slack_post_key,
)
from bot.presenter import view_of
from bot.runtime import Runtime
from providers.slack import dm_channel, find_own_message, metadata_for
from providers.slack_api import SlackApi
from providers.slack_blocks import final_summary_text
from providers.text import slack_unescape
from storage import catalog
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.models import Incident, OutboxItem, TimelineEvent

log = logging.getLogger(__name__)

WAR_ROOM = "war_room"


def enqueue_post(
    session: Session,
    *,
    incident: Incident,
    key: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    channel: str | None = None,
    user: str | None = None,
) -> OutboxItem:
    """Enqueue one message: to ``channel`` (an id, or ``WAR_ROOM`` for the incident's war
    room, resolved when the step runs) or to ``user`` (a Slack user id or e-mail: a DM)."""
    if (channel is None) == (user is None):
        raise ValueError("enqueue_post needs exactly one of channel and user")
    return outbox_store.enqueue(
        session,
        kind=OutboxKind.SLACK_POST,
        idempotency_key=slack_post_key(key),
        incident_id=incident.id,
        recipient_kind="user" if user else "channel",
        recipient=user or channel,
        payload={"text": text, "blocks": blocks},
    )


def enqueue_pin_fetch(
    session: Session, *, incident: Incident, event: TimelineEvent, request_key: str
) -> OutboxItem:
    """``request_key`` names the pinning (a Slack ``event_id``): pinning again after an
    unpin fetches again."""
    return outbox_store.enqueue(
        session,
        kind=OutboxKind.PIN_FETCH,
        idempotency_key=pin_fetch_key(event.external_key, request_key),
        incident_id=incident.id,
        payload={"external_key": event.external_key, **(event.data or {})},
    )


def enqueue_archive(session: Session, *, incident: Incident, run: int) -> OutboxItem:
    return outbox_store.enqueue(
        session,
        kind=OutboxKind.ARCHIVE,
        idempotency_key=archive_key(incident.id, run),
        incident_id=incident.id,
    )


# -- helpers ---------------------------------------------------------------------------


def _incident(session: Session, item: OutboxItem) -> Incident:
    incident = session.get(Incident, item.incident_id) if item.incident_id else None
    if incident is None:
        raise PermanentProviderError(f"incident {item.incident_id} no longer exists")
    return incident


def _api(rt: Runtime, session: Session) -> SlackApi:
    api = rt.slack_api(session)
    if api is None:
        raise PermanentProviderError(
            "Slack is not configured: set SLACK_BOT_TOKEN or a SLACK provider"
        )
    return api


def _war_room_or_wait(session: Session, incident: Incident) -> str | None:
    """The war room's channel id; Defer while it is being created; None if there is none."""
    if incident.war_room_channel_id:
        return incident.war_room_channel_id
    pending = session.scalar(
        select(OutboxItem.id)
        .where(
            OutboxItem.incident_id == incident.id,
            OutboxItem.kind == OutboxKind.WAR_ROOM,
            OutboxItem.state.in_(outbox_store.OPEN_STATES),
        )
        .limit(1)
    )
    if pending is not None:
        raise Defer("waiting for the war room", 1.0)
    return None


def post_once(
    api: SlackApi,
    item: OutboxItem,
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    short_id: str,
    key: str | None = None,
) -> str:
    """Post to ``channel`` unless an earlier attempt of ``item`` already did; returns ts.

    A retry reads the channel's history (the DM channel for a person) from the step's
    first claim on, to the end: the message carries ``key`` in its metadata."""
    key = key or item.idempotency_key
    if item.attempts > 1:
        where = dm_channel(api, channel) if channel.startswith(("U", "W")) else channel
        found = find_own_message(api, where, key, since=item.first_claimed_at)
        if found:
            return found
    args: dict[str, Any] = {
        "channel": channel,
        "text": text,
        "unfurl_links": False,
        "metadata": metadata_for(key, short_id),
    }
    if blocks:
        args["blocks"] = blocks
    data = api.call("chat.postMessage", **args)
    return str(data.get("ts", ""))


# -- steps -----------------------------------------------------------------------------


def slack_post_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    with rt.transaction() as session:
        incident = _incident(session, item)
        api = _api(rt, session)
        short_id = incident.short_id
        target = item.recipient or ""
        if item.recipient_kind == "channel" and target == WAR_ROOM:
            channel = _war_room_or_wait(session, incident)
            if channel is None:
                return {"skipped": "the incident has no war room"}
            target = channel
    if item.recipient_kind == "user" and "@" in target:
        found = api.call("users.lookupByEmail", email=target)
        target = str((found.get("user") or {}).get("id") or "")
        if not target:
            raise PermanentProviderError("no Slack user for that e-mail address")
    payload = item.payload or {}
    try:
        ts = post_once(
            api,
            item,
            channel=target,
            text=str(payload.get("text") or ""),
            blocks=payload.get("blocks"),
            short_id=short_id,
        )
    except PermanentProviderError as exc:
        if exc.code == "is_archived":
            return {"skipped": f"{target} is archived"}
        raise
    return {"channel": target, "ts": ts}


def _slack_name(api: SlackApi, user_id: str) -> str:
    try:
        user = api.call("users.info", user=user_id).get("user") or {}
    except PermanentProviderError:
        return user_id
    profile = user.get("profile") or {}
    return str(profile.get("display_name") or user.get("name") or user_id)


def pin_fetch_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    payload = item.payload or {}
    channel, ts = str(payload.get("channel") or ""), str(payload.get("ts") or "")
    external_key = str(payload.get("external_key") or "")
    with rt.transaction() as session:
        api = _api(rt, session)
        event = session.scalar(
            select(TimelineEvent).where(TimelineEvent.external_key == external_key)
        )
        if event is None:
            return {"skipped": "unpinned before its text was fetched"}
    data = api.call("conversations.history", channel=channel, latest=ts, inclusive=True, limit=1)
    message = next((m for m in data.get("messages", []) if m.get("ts") == ts), None)
    if message is None:  # a thread reply: history lists only the top level
        try:
            replies = api.call("conversations.replies", channel=channel, ts=ts, limit=200)
        except PermanentProviderError as exc:
            if exc.code not in ("thread_not_found", "message_not_found"):
                raise
            replies = {}
        message = next((m for m in replies.get("messages", []) if m.get("ts") == ts), None)
    if message is None:
        return {"skipped": "message not found (deleted?)"}
    author = str(message.get("user") or payload.get("author") or "")
    name = author
    if author:
        with rt.transaction() as session:
            person = catalog.get_person(session, ref=author)
            known = person.label if person else None
        name = known or _slack_name(api, author)
    text = slack_unescape(str(message.get("text") or ""))  # Slack sends it escaped
    with rt.transaction() as session:
        event = session.scalar(
            select(TimelineEvent).where(TimelineEvent.external_key == external_key)
        )
        if event is None:
            return {"skipped": "unpinned while its text was fetched"}
        event.message = text[:10000] or "(message without text)"
        if name:
            event.actor = name[:200]
        event.data = {**(event.data or {}), "author": author, "fetched": True}
        incident = session.get(Incident, event.incident_id)
        if incident is not None:
            outbox_store.enqueue(
                session,
                kind=OutboxKind.REFRESH,
                incident_id=incident.id,
                idempotency_key=refresh_key(incident.id, f"pin{event.id}"),
            )
    rt.wake_outbox()
    return {"channel": channel, "ts": ts, "author": author}


def archive_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    with rt.transaction() as session:
        incident = _incident(session, item)
        channel = incident.war_room_channel_id
        if not channel:
            return {"skipped": "the incident has no war room"}
        if incident.status != "RESOLVED":
            return {"skipped": f"{incident.short_id} was reopened"}
        api = _api(rt, session)
        view = view_of(session, rt, incident)
        duration = None
        if incident.resolved_at is not None:
            start = incident.detected_at or incident.created_at
            duration = max(0, int((incident.resolved_at - start).total_seconds() // 60))
        lead = incident.lead.label if incident.lead else None
    text = final_summary_text(view, duration, lead)
    try:
        post_once(api, item, channel=channel, text=text, blocks=None, short_id=view.short_id)
    except PermanentProviderError as exc:
        if exc.code != "is_archived":
            raise
    try:
        api.call("conversations.archive", channel=channel)
    except PermanentProviderError as exc:
        if exc.code != "already_archived":
            raise
    with rt.transaction() as session:
        incident = _incident(session, item)
        now = rt.clock()
        incident.archived_at = now
        audit.record(
            session,
            SYSTEM,
            action="incident.archive",
            target_type="incident",
            target=incident.short_id,
            changes={"war_room": [channel, "archived"]},
        )
        incident_store.add_event(
            session,
            incident=incident,
            type="ARCHIVED",
            message=f"War room <#{channel}> archived",
            actor="IMAS",
            source="scheduler",
            data={"channel_id": channel},
            external_key=f"archived:{item.id}",
        )
    return {"channel": channel, "archived": True}


def oncall_dm_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    """A DM that belongs to no incident (on-call hand-offs, ``bot.flows.handoff``)."""
    with rt.transaction() as session:
        api = _api(rt, session)
    target = item.recipient or ""
    if "@" in target:
        found = api.call("users.lookupByEmail", email=target)
        target = str((found.get("user") or {}).get("id") or "")
        if not target:
            raise PermanentProviderError("no Slack user for that e-mail address")
    text = str((item.payload or {}).get("text") or "")
    answer = api.call("chat.postMessage", channel=target, text=text)
    return {"channel": target, "ts": answer.get("ts")}


STEPS = {
    OutboxKind.ONCALL_DM: oncall_dm_step,
    OutboxKind.SLACK_POST: slack_post_step,
    OutboxKind.PIN_FETCH: pin_fetch_step,
    OutboxKind.ARCHIVE: archive_step,
}
