"""The orchestration steps the outbox runs: notifications, war room, LID, refreshes.

Every step is idempotent and re-runnable: it looks at what is already recorded (channel
id, summary ts, document id, earlier deliveries) before acting, and records each piece as
soon as it exists, in its own small transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.errors import Defer, PermanentProviderError, RetryableProviderError
from bot.faults import crash_point
from bot.flows.oncall import current_for_team
from bot.flows.slack_steps import enqueue_post
from bot.naming import channel_name
from bot.outbox import OutboxWorker
from bot.outbox_kinds import OutboxKind, lid_key, lid_sync_key, refresh_key
from bot.presenter import view_of
from bot.runtime import Runtime
from providers.base import IncidentView, Notification, Recipient
from providers.slack import SlackProvider, find_own_message, metadata_for
from providers.slack_api import SlackApi
from providers.slack_blocks import fallback_text, war_room_ready_text, war_room_summary_blocks
from providers.text import one_line, slack_fit
from storage import catalog
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.models import Incident, OutboxItem, Person

log = logging.getLogger(__name__)

TYPE_LABEL = {
    "SLACK": "Slack",
    "DISCORD": "Discord",
    "TEAMS": "Teams",
    "EMAIL": "email",
    "WEBHOOK": "webhook",
    "NTFY": "ntfy",
    "SMS": "SMS",
}
KIND_LABEL = {"channel": "channel", "user": "user", "email": "address", "default": "target"}


def _load(session: Session, item: OutboxItem) -> Incident:
    incident = session.get(Incident, item.incident_id) if item.incident_id else None
    if incident is None:
        raise PermanentProviderError(f"incident {item.incident_id} no longer exists")
    return incident


def _enqueue_refresh(session: Session, incident: Incident, reason: str) -> None:
    outbox_store.enqueue(
        session,
        kind=OutboxKind.REFRESH,
        incident_id=incident.id,
        idempotency_key=refresh_key(incident.id, reason),
    )


# -- notify ----------------------------------------------------------------------------


def notify_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    with rt.transaction() as session:
        incident = _load(session, item)
        provider = rt.provider_by_name(session, item.provider_name or "")
        view = view_of(session, rt, incident)
        earlier = session.scalar(
            select(OutboxItem.id)
            .where(
                OutboxItem.incident_id == item.incident_id,
                OutboxItem.kind == OutboxKind.NOTIFY,
                OutboxItem.provider_name == item.provider_name,
                OutboxItem.recipient_kind == item.recipient_kind,
                OutboxItem.recipient == item.recipient,
                OutboxItem.id < item.id,
                OutboxItem.state.in_(outbox_store.OPEN_STATES),
            )
            .limit(1)
        )
        if earlier is not None:
            raise Defer(f"waiting for delivery #{earlier} to the same recipient", 1.0)
        anchor = outbox_store.first_delivery(
            session,
            incident_id=incident.id,
            provider_name=item.provider_name or "",
            recipient_kind=item.recipient_kind or "",
            recipient=item.recipient or "",
        )
    recipient = Recipient(item.recipient_kind or "default", item.recipient or "")
    notification = Notification(
        event=item.event or "created",
        incident=view,
        text=item.payload.get("text"),
        actor=item.payload.get("actor"),
    )
    label = TYPE_LABEL.get(provider.type, provider.type)
    log.info(
        "Sending notification to %s %s %s",
        label,
        KIND_LABEL.get(recipient.kind, recipient.kind),
        recipient.address or provider.name,
        extra={"incident": view.short_id},
    )
    rt.breakers.before(provider.name)
    try:
        result = provider.send(
            notification,
            recipient,
            idempotency_key=item.idempotency_key,
            prior=anchor.result if anchor is not None and anchor.id != item.id else None,
        )
    except RetryableProviderError:
        rt.breakers.failure(provider.name)
        raise
    except PermanentProviderError:
        rt.breakers.success(provider.name)  # the target answered
        raise
    rt.breakers.success(provider.name)
    log.info("%s notification sent successfully", label, extra={"incident": view.short_id})
    if item.event == "created" and isinstance(provider, SlackProvider) and recipient.kind != "user":
        # Steps that finished while this post was in flight are shown at once.
        ts, channel = str(result.data.get("ts", "")), str(result.data.get("channel", ""))
        with rt.transaction() as session:
            latest = view_of(session, rt, _load(session, item))
        if latest != view and ts:
            provider.update_announcement(channel, ts, Notification("created", latest))
    return {"detail": result.detail, **result.data}


def recipient_label(session: Session, item: OutboxItem) -> str:
    """Human name of a delivery's recipient: the team for its channel, a person, an address."""
    if item.recipient_kind == "channel" and item.recipient:
        incident = session.get(Incident, item.incident_id) if item.incident_id else None
        if incident and incident.team and incident.team.slack_channel_id == item.recipient:
            return incident.team.name
        return item.recipient
    if item.recipient_kind == "user" and item.recipient:
        person = catalog.get_person(session, ref=item.recipient)
        return person.label if person else item.recipient
    return item.recipient or item.provider_name or "target"


def on_finish(session: Session, rt: Runtime, item: OutboxItem, ok: bool, error: str | None) -> None:
    """Timeline events for finished steps, in the same transaction as the state change."""
    if item.incident_id is None:
        return
    incident = session.get(Incident, item.incident_id)
    if incident is None:
        return
    if item.kind == OutboxKind.NOTIFY:
        provider_type = _provider_type(session, rt, item.provider_name or "")
        where = f"{TYPE_LABEL.get(provider_type, provider_type)} ({recipient_label(session, item)})"
        if ok:
            incident_store.add_event(
                session,
                incident=incident,
                type="ALERT_SENT",
                message=f"Notification sent to {where}",
                actor="IMAS",
                source="outbox",
                data={
                    "provider": item.provider_name,
                    "recipient": item.recipient,
                    "event": item.event,
                },
                external_key=f"delivery:{item.id}:sent",
            )
        else:
            incident_store.add_event(
                session,
                incident=incident,
                type="NOTIFICATION_FAILED",
                message=f"Notification to {where} failed: {error}",
                actor="IMAS",
                source="outbox",
                data={
                    "provider": item.provider_name,
                    "recipient": item.recipient,
                    "event": item.event,
                    "error": error,
                },
                external_key=None,  # written once per transition to dead (repair may reset it)
            )
    elif not ok and item.kind in (OutboxKind.WAR_ROOM, OutboxKind.LID):
        label = "War room creation" if item.kind == OutboxKind.WAR_ROOM else "LID document creation"
        incident_store.add_event(
            session,
            incident=incident,
            type="NOTIFICATION_FAILED",
            message=f"{label} failed: {error}",
            actor="IMAS",
            source="outbox",
            data={"step": item.kind, "error": error},
            external_key=None,  # written once per transition to dead (repair may reset it)
        )
        _enqueue_refresh(session, incident, f"{item.kind}-failed-{item.attempts}")
        rt.wake_outbox()


def _provider_type(session: Session, rt: Runtime, name: str) -> str:
    row = catalog.get_provider(session, name=name)
    return row.type if row else "SLACK"


# -- war room --------------------------------------------------------------------------


def _slack(rt: Runtime, session: Session) -> SlackApi:
    api = rt.slack_api(session)
    if api is None:
        raise PermanentProviderError(
            "Slack is not configured: set SLACK_BOT_TOKEN or a SLACK provider"
        )
    return api


def _bot_user_id(api: SlackApi) -> str:
    return str(api.identity().get("user_id", ""))


def _find_channel(api: SlackApi, name: str) -> dict[str, Any] | None:
    cursor = None
    for _ in range(50):
        data = api.call(
            "conversations.list",
            types="public_channel,private_channel",
            limit=1000,
            exclude_archived=False,
            **({"cursor": cursor} if cursor else {}),
        )
        for channel in data.get("channels", []):
            if channel.get("name") == name:
                return dict(channel)
        cursor = (data.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def _create_channel(api: SlackApi, incident: Incident) -> tuple[str, str]:
    """Create (or adopt our own earlier) war-room channel; returns (id, name)."""
    bot_user = None
    for n in range(1, 7):
        suffix = "" if n == 1 else f"-{n}"
        name = channel_name(incident.short_id, incident.title, suffix=suffix)
        try:
            data = api.call("conversations.create", name=name, is_private=incident.private)
            channel = data.get("channel") or {}
            return str(channel["id"]), str(channel.get("name", name))
        except PermanentProviderError as exc:
            if exc.code != "name_taken":
                raise
        existing = _find_channel(api, name)
        bot_user = bot_user or _bot_user_id(api)
        if existing and existing.get("creator") == bot_user:
            if existing.get("is_archived"):
                api.call("conversations.unarchive", channel=existing["id"])
            return str(existing["id"]), name  # ours, from an attempt whose answer was lost
    raise PermanentProviderError(
        f"channel names for {incident.short_id} are all taken",
        code="name_taken",
        hint="rename or archive the old channels",
    )


def _resolve_slack_users(
    rt: Runtime, api: SlackApi, people: list[tuple[int, str | None, str | None]]
) -> list[str]:
    """Slack user ids of ``(person id, slack id, email)`` triples, looking e-mails up in
    Slack outside any transaction and remembering what was found."""
    found: dict[int, str] = {}
    users: set[str] = set()
    for person_id, slack_id, email in people:
        if slack_id:
            users.add(slack_id)
            continue
        if not email:
            continue
        try:
            data = api.call("users.lookupByEmail", email=email)
        except PermanentProviderError:
            continue
        user_id = str((data.get("user") or {}).get("id") or "")
        if user_id:
            found[person_id] = user_id
            users.add(user_id)
    if found:
        with rt.transaction() as session:
            for person_id, user_id in found.items():
                person = session.get(Person, person_id)
                if person is not None and not person.slack_user_id:
                    person.slack_user_id = user_id
    return sorted(users)


def _in_parallel(*calls: Callable[[], object]) -> None:
    """Run independent, idempotent Slack calls together; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="war-room") as pool:
        futures = [pool.submit(call) for call in calls]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


def topic_for(view: IncidentView) -> str:
    """The war room's topic (Slack renders mentions and links in topics: names escaped)."""
    lead = f" | Lead: {one_line(view.lead_name)}" if view.lead_name else ""
    return slack_fit(
        one_line(
            f"{view.emoji} {view.severity} | {view.status} | {view.service_name}{lead} | "
            f"{view.short_id}"
        ),
        250,
        ellipsis="",
    )


def war_room_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    with rt.transaction() as session:
        incident = _load(session, item)
        api = _slack(rt, session)
        channel_id = incident.war_room_channel_id
    if not channel_id:
        channel_id, name = _create_channel(api, incident)
        crash_point("war_room.created", channel_id)
        team = api.identity().get("team_id") or ""
        with rt.transaction() as session:
            incident = _load(session, item)
            incident.war_room_channel_id = channel_id
            incident.war_room_channel_name = name
            incident.war_room_url = (
                f"https://slack.com/app_redirect?channel={channel_id}&team={team}"
            )
    with rt.reading() as session:
        incident = _load(session, item)
        view = view_of(session, rt, incident)
        people = [
            (p.id, p.slack_user_id, p.email)
            for p in (
                incident.lead,
                incident.declared_by,
                current_for_team(session, incident.team, rt.clock()) if incident.team else None,
            )
            # (an on-call named only by a schedule may be unsaved: no id to remember)
            if p is not None and (p.id is not None or p.slack_user_id)
        ]
        summary_ts = incident.war_room_summary_ts
    # No transaction is held during Slack calls; the room's set-up calls are independent
    # and idempotent, so they run together (a slow Slack costs ~3 calls, not ~8).
    users = _resolve_slack_users(rt, api, people)
    pinned: dict[str, str] = {}
    written: dict[str, Any] = {}

    def summary() -> None:
        ts = summary_ts
        if not ts:
            ts = _post_summary(api, channel_id, view, item)
            with rt.transaction() as session:
                _load(session, item).war_room_summary_ts = ts
        try:
            api.call("pins.add", channel=channel_id, timestamp=ts)
        except PermanentProviderError as exc:
            if exc.code != "already_pinned":
                raise
        pinned["ts"] = ts

    topic = topic_for(view)

    def set_topic() -> None:
        api.call("conversations.setTopic", channel=channel_id, topic=topic)
        written["topic"] = topic

    def bookmarks() -> None:
        written["bookmarks"] = _bookmarks(api, channel_id, view)

    _in_parallel(set_topic, lambda: _invite(api, channel_id, users), bookmarks, summary)
    summary_ts = pinned["ts"]
    with rt.transaction() as session:
        incident = _load(session, item)
        incident.war_room_topic = written["topic"]
        incident.war_room_bookmarks = written["bookmarks"]
        incident_store.add_event(
            session,
            incident=incident,
            type="WAR_ROOM_CREATED",
            message=f"War room <#{channel_id}> created",
            actor="IMAS",
            source="outbox",
            data={"channel_id": channel_id, "invited": users},
            external_key=f"war_room:{incident.id}",
        )
        declarer = incident.declared_by
        if declarer is not None and declarer.slack_user_id:
            # The person who declared gets the way in, once the room exists.
            enqueue_post(
                session,
                incident=incident,
                key=f"war_room_ready:{incident.id}",
                user=declarer.slack_user_id,
                text=war_room_ready_text(incident.short_id, channel_id),
            )
        _enqueue_refresh(session, incident, "war_room")
        if rt.settings.google_enabled:
            outbox_store.enqueue(
                session,
                kind=OutboxKind.LID_SYNC,
                incident_id=incident.id,
                idempotency_key=lid_sync_key(incident.id, "war_room"),
            )
    rt.wake_outbox()
    return {"channel_id": channel_id, "summary_ts": summary_ts, "invited": users}


def _invite(api: SlackApi, channel_id: str, users: list[str]) -> None:
    if not users:
        return
    try:
        api.call("conversations.invite", channel=channel_id, users=",".join(users))
    except PermanentProviderError as exc:
        if exc.code == "already_in_channel":
            return
        if exc.code in ("user_not_found", "cant_invite_self", "cant_invite", "user_is_restricted"):
            for user in users:  # one bad user must not keep the others out
                try:
                    api.call("conversations.invite", channel=channel_id, users=user)
                except PermanentProviderError as single:
                    log.warning("could not invite %s to %s: %s", user, channel_id, single.code)
            return
        raise


def _wanted_bookmarks(view: IncidentView) -> list[tuple[str, str]]:
    wanted = [("Incident", view.incident_url), ("Runbook", view.runbook_url), ("LID", view.lid_url)]
    return [(title, link) for title, link in wanted if link]


def _bookmarks(api: SlackApi, channel_id: str, view: IncidentView) -> list[str]:
    """At creation (and its retries): add the bookmarks the channel lacks; returns the
    titles it now has."""
    existing = api.call("bookmarks.list", channel_id=channel_id).get("bookmarks", [])
    titles = {str(b.get("title")) for b in existing}
    for title, link in _wanted_bookmarks(view):
        if title not in titles:
            api.call("bookmarks.add", channel_id=channel_id, title=title, type="link", link=link)
            titles.add(title)
    return sorted(titles)


def _refresh_topic(rt: Runtime, item: OutboxItem, api: SlackApi, channel_id: str) -> None:
    """Set the topic only when it differs from what IMAS last wrote (stored), once, whatever
    the number of refreshes running: the worker that records the new topic makes the call.

    The topic is computed from the incident as it is now (not from the refresh's earlier
    snapshot, which a later change may have overtaken). If another worker recorded a newer
    topic while our call was in flight, our (older) call may have landed last: the newest
    topic is then written again, so the room always ends on the current one."""
    for _ in range(3):
        with rt.transaction() as session:
            incident = _load(session, item)
            topic = topic_for(view_of(session, rt, incident))
            old = incident.war_room_topic
            if old == topic:
                return
            won = incident_store.swap_war_room_surface(
                session, incident_id=incident.id, field="war_room_topic", old=old, new=topic
            )
        if not won:
            return
        try:
            api.call("conversations.setTopic", channel=channel_id, topic=topic)
        except Exception:
            with rt.transaction() as session:  # let the retry (or the next refresh) set it
                incident_store.swap_war_room_surface(
                    session,
                    incident_id=item.incident_id or 0,
                    field="war_room_topic",
                    old=topic,
                    new=old,
                )
            raise
        with rt.reading() as session:
            latest = _load(session, item).war_room_topic
        if latest == topic:
            return
        # A newer topic was recorded (and sent) while ours was in flight: send it again.
        with rt.transaction() as session:
            incident_store.swap_war_room_surface(
                session,
                incident_id=item.incident_id or 0,
                field="war_room_topic",
                old=latest,
                new=None,
            )


def _refresh_bookmarks(
    rt: Runtime, item: OutboxItem, api: SlackApi, channel_id: str, view: IncidentView
) -> None:
    """Add the bookmarks that appeared since IMAS last wrote them (the LID's, typically);
    never re-reads the channel's bookmarks."""
    with rt.transaction() as session:
        incident = _load(session, item)
        have = list(incident.war_room_bookmarks or [])
        missing = [(t, link) for t, link in _wanted_bookmarks(view) if t not in have]
        if not missing:
            return
        new = sorted({*have, *(t for t, _ in missing)})
        if not incident_store.swap_war_room_surface(
            session,
            incident_id=incident.id,
            field="war_room_bookmarks",
            old=incident.war_room_bookmarks,
            new=new,
        ):
            return
    for title, link in missing:
        api.call("bookmarks.add", channel_id=channel_id, title=title, type="link", link=link)


def _post_summary(api: SlackApi, channel_id: str, view: IncidentView, item: OutboxItem) -> str:
    key = f"summary:{item.idempotency_key}"
    if item.attempts > 1:
        found = find_own_message(api, channel_id, key, since=item.first_claimed_at)
        if found:
            return found
    data = api.call(
        "chat.postMessage",
        channel=channel_id,
        text=fallback_text(view),
        blocks=war_room_summary_blocks(view),
        metadata=metadata_for(key, view.short_id),
    )
    return str(data["ts"])


# -- LID -------------------------------------------------------------------------------


def lid_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    lid = rt.lid()
    if lid is None:
        raise PermanentProviderError("Google is not configured")
    with rt.transaction() as session:
        incident = _load(session, item)
        if incident.lid_url:
            return {"document_id": incident.lid_document_id, "url": incident.lid_url}
        view = view_of(session, rt, incident)
        team_email = incident.team.email if incident.team else None
    document = lid.create_document(
        view, idempotency_key=lid_key(incident.id), team_email=team_email
    )
    with rt.transaction() as session:
        incident = _load(session, item)
        incident.lid_document_id = document.document_id
        incident.lid_url = document.url
        incident_store.add_event(
            session,
            incident=incident,
            type="DOCUMENT_CREATED",
            message="LID document created",
            actor="IMAS",
            source="outbox",
            data={"url": document.url},
            external_key=f"lid:{incident.id}",
        )
        _enqueue_refresh(session, incident, "lid")
        outbox_store.enqueue(
            session,
            kind=OutboxKind.LID_SYNC,
            incident_id=incident.id,
            idempotency_key=lid_sync_key(incident.id, "created"),
        )
    rt.wake_outbox()
    return {"document_id": document.document_id, "url": document.url}


# Per-recipient delivery receipts stay in IMAS's timeline; the document keeps what a
# post-mortem reader needs (status, severity, notes, roles, war room, pins...).
DELIVERY_RECEIPTS = frozenset({"ALERT_SENT", "NOTIFICATION_FAILED"})


def _lid_document_or_wait(session: Session, incident: Incident) -> str | None:
    """The incident's document id; None when it will never have one (no LID step, or it
    died). Raises Defer while the LID step is still on its way."""
    if incident.lid_document_id:
        return incident.lid_document_id
    lid_rows = outbox_store.for_incident(session, incident_id=incident.id, kind=OutboxKind.LID)
    if not lid_rows or lid_rows[-1].state == "dead":
        return None
    raise Defer("waiting for the LID document", 2.0)


def lid_sync_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    """Bring the living document up to date: header values, the timeline (each line
    written once, in order; delivery receipts excluded), the resolution summary.
    Idempotent."""
    lid = rt.lid()
    if lid is None:
        return {"skipped": "Google is not configured"}
    from providers.google_docs import TimelineLine

    with rt.transaction() as session:
        incident = _load(session, item)
        document_id = _lid_document_or_wait(session, incident)
        if document_id is None:
            return {"skipped": "the incident has no LID document"}
        view = view_of(session, rt, incident)
        lines = [
            TimelineLine(
                key=str(event.id),
                at=event.at,
                type=event.type,
                message=event.message,
                actor=event.actor,
            )
            for event in incident_store.timeline(session, incident_id=incident.id)
            if event.type not in DELIVERY_RECEIPTS
        ]
        summary = incident.resolution_summary
    lid.sync_header(document_id, view)
    added = lid.append_timeline(document_id, lines)
    if summary:
        lid.write_resolution(document_id, summary)
    with rt.transaction() as session:
        _load(session, item).lid_synced_at = rt.clock()
    return {"timeline_lines_added": added}


def _share_warning(rt: Runtime, item: OutboxItem, label: str, reason: str) -> None:
    with rt.transaction() as session:
        incident_store.add_event(
            session,
            incident=_load(session, item),
            type="LID_SHARE_FAILED",
            message=f"Could not share the incident document with {label}: {reason}",
            actor="IMAS",
            source="outbox",
            external_key=f"lid_share:{item.id}",
        )


def lid_share_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    """Give one person (lead, declarer, role holder) writer access to the document.

    A Slack user's e-mail comes from ``users.info`` (``profile.email``, scope
    ``users:read.email``) and is remembered on the person. A share that cannot happen (no
    e-mail known, Slack or Google refusing) is a ``LID_SHARE_FAILED`` timeline warning with
    the reason, never a silent skip; transient failures are retried. Idempotent: Google
    permissions already held are not created again.
    """
    lid = rt.lid()
    if lid is None:
        return {"skipped": "Google is not configured"}
    person_id = int(item.payload.get("person_id") or 0)
    with rt.transaction() as session:
        incident = _load(session, item)
        document_id = _lid_document_or_wait(session, incident)
        if document_id is None:
            return {"skipped": "the incident has no LID document"}
        person = session.get(Person, person_id)
        if person is None:
            return {"skipped": f"person {person_id} no longer exists"}
        email, slack_user, label = person.email, person.slack_user_id, person.label
        api = rt.slack_api(session) if not email and slack_user else None
    reason: str | None = None
    if not email and slack_user:
        if api is None:
            reason = "Slack is not configured, so their e-mail address cannot be looked up"
        else:
            try:
                data = api.call("users.info", user=slack_user)
            except PermanentProviderError as exc:
                reason = f"Slack users.info refused: {exc.describe()}"
            else:
                user = data.get("user") or {}
                profile = user.get("profile") or {}
                email = str(profile.get("email") or "") or None
                name = str(
                    profile.get("real_name") or user.get("real_name") or user.get("name") or ""
                )
                if name and label == slack_user:
                    label = name
                _remember_person(rt, person_id, email, name)
                if email is None:
                    reason = (
                        "their Slack profile shows no e-mail address "
                        "(the app needs the users:read.email scope)"
                    )
    elif not email:
        reason = "no e-mail address is known for them"
    if email and reason is None:
        try:
            reason = lid.share_with(document_id, email)
        except PermanentProviderError as exc:
            reason = exc.describe()
    if reason:
        _share_warning(rt, item, label, reason)
        return {"warning": reason}
    return {"shared_with": email, "role": "writer"}


def _remember_person(rt: Runtime, person_id: int, email: str | None, name: str) -> None:
    """Store a Slack user's e-mail (unless someone else already has it) and name on the
    person, and bring the documents they lead up to date."""
    with rt.transaction() as session:
        person = session.get(Person, person_id)
        if person is None:
            return
        if name and not person.display_name:
            person.display_name = name[:200]
        if email and not person.email and catalog.get_person(session, ref=email) is None:
            person.email = email
        for incident in session.scalars(
            select(Incident).where(
                Incident.lead_id == person_id, Incident.lid_document_id.is_not(None)
            )
        ):
            outbox_store.enqueue(
                session,
                kind=OutboxKind.LID_SYNC,
                incident_id=incident.id,
                idempotency_key=lid_sync_key(incident.id, f"email{person_id}"),
            )
    rt.wake_outbox()


def lid_postmortem_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    """Write the post-mortem draft (``bot.postmortem``) into the document's POST-MORTEM
    section: the facts are rewritten if they changed, the review skeleton written once.
    Idempotent."""
    lid = rt.lid()
    if lid is None:
        return {"skipped": "Google is not configured"}
    from bot import postmortem

    with rt.transaction() as session:
        incident = _load(session, item)
        document_id = _lid_document_or_wait(session, incident)
        if document_id is None:
            return {"skipped": "the incident has no LID document"}
        facts, skeleton = postmortem.document_lines(postmortem.build(session, incident))
    return {"written": lid.write_postmortem(document_id, facts, skeleton)}


# -- refresh ---------------------------------------------------------------------------


def refresh_step(rt: Runtime, item: OutboxItem) -> dict[str, Any]:
    """Re-render every Slack surface of the incident from its current state."""
    with rt.transaction() as session:
        incident = _load(session, item)
        view = view_of(session, rt, incident)
        anchors = [
            row
            for row in outbox_store.for_incident(
                session, incident_id=incident.id, kind=OutboxKind.NOTIFY
            )
            if row.event == "created" and row.recipient_kind == "channel" and row.state == "done"
        ]
        pending_announcements = [
            row
            for row in outbox_store.for_incident(
                session, incident_id=incident.id, kind=OutboxKind.NOTIFY
            )
            if row.event == "created"
            and row.recipient_kind == "channel"
            and row.state in outbox_store.OPEN_STATES
            and row.attempts == 0
        ]
        providers = {
            row.id: rt.provider_by_name(session, row.provider_name or "") for row in anchors
        }
        summary_ts, channel_id = incident.war_room_summary_ts, incident.war_room_channel_id
        api = rt.slack_api(session) if channel_id else None
    updated = 0
    for row in anchors:
        provider = providers[row.id]
        if isinstance(provider, SlackProvider) and row.result.get("ts"):
            provider.update_announcement(
                str(row.result.get("channel") or row.recipient),
                str(row.result["ts"]),
                Notification("refresh", view),
            )
            updated += 1
    if api is not None and channel_id and summary_ts:
        api.call(
            "chat.update",
            channel=channel_id,
            ts=summary_ts,
            text=fallback_text(view),
            blocks=war_room_summary_blocks(view),
        )
        _refresh_topic(rt, item, api, channel_id)
        _refresh_bookmarks(rt, item, api, channel_id, view)
    if pending_announcements and not anchors:
        log.debug(
            "announcements not posted yet for %s; they will render current state", view.short_id
        )
    return {"updated": updated}


STEPS = {
    OutboxKind.NOTIFY: notify_step,
    OutboxKind.WAR_ROOM: war_room_step,
    OutboxKind.LID: lid_step,
    OutboxKind.REFRESH: refresh_step,
    OutboxKind.LID_SYNC: lid_sync_step,
    OutboxKind.LID_SHARE: lid_share_step,
    OutboxKind.LID_POSTMORTEM: lid_postmortem_step,
}


def make_worker(rt: Runtime) -> OutboxWorker:
    from bot.flows.slack_steps import STEPS as SLACK_STEPS  # posts, pins, archiving (issue 5)

    steps = {**STEPS, **SLACK_STEPS}
    return OutboxWorker(rt, steps=steps, on_finish=on_finish)  # type: ignore[arg-type]


__all__ = ["STEPS", "make_worker", "on_finish", "RetryableProviderError"]
