"""Every kind of outbox step, and the idempotency key of each, in one place.

An outbox row is one side effect (a Slack post, a document, a notification...). Its
``idempotency_key`` is unique: enqueueing the same step twice adds nothing, so every
flow can be re-run safely. The key formats below are stored in databases already running
IMAS: changing one would let a step in flight be enqueued a second time, so they only grow.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

MAX_KEY = 255


class OutboxKind(StrEnum):
    WAR_ROOM = "war_room"  # create the war room channel, invite, topic, bookmarks, pin
    LID = "lid"  # create the incident document (Google Docs)
    LID_SYNC = "lid_sync"  # bring the incident document up to date
    NOTIFY = "notify"  # one notification to one recipient through one provider
    REFRESH = "refresh"  # re-render the Slack surfaces (announcements, pinned summary)
    SLACK_POST = "slack_post"  # one message to a channel, the war room or a person
    PIN_FETCH = "pin_fetch"  # fetch the text of a 📌 message into the timeline
    ARCHIVE = "archive"  # archive the war room of a resolved incident
    ONCALL_DM = "oncall_dm"  # an on-call hand-off summary to a person (no incident)
    LID_SHARE = "lid_share"  # give one person (lead, declarer, role holder) writer access
    LID_POSTMORTEM = "lid_postmortem"  # write the post-mortem draft into the document


def _cut(key: str) -> str:
    return key[:MAX_KEY]


def war_room_key(incident_id: int) -> str:
    """One war room per incident, ever."""
    return f"{OutboxKind.WAR_ROOM}:{incident_id}"


def lid_key(incident_id: int) -> str:
    """One document per incident, ever."""
    return f"{OutboxKind.LID}:{incident_id}"


def lid_sync_key(incident_id: int, cause: str) -> str:
    """One sync per cause: ``ev<event id>``, ``created``, ``war_room``."""
    return _cut(f"{OutboxKind.LID_SYNC}:{incident_id}:{cause}")


def refresh_key(incident_id: int, cause: str) -> str:
    """One refresh per cause: ``ev<event id>``, ``repair<id>``, ``pin<id>``, ``unpin<id>``…"""
    return _cut(f"{OutboxKind.REFRESH}:{incident_id}:{cause}")


def notify_key(incident_id: int, event_key: str, provider: str, recipient: str) -> str:
    """One delivery per (incident event, provider, recipient)."""
    return _cut(f"{OutboxKind.NOTIFY}:{incident_id}:{event_key}:{provider}:{recipient}")


def slack_post_key(key: str) -> str:
    """A message's own key (``war_room_post:<event id>``, ``role_dm:<event id>``…)."""
    return _cut(key)


def pin_fetch_key(external_key: str | None, request_key: str) -> str:
    """One fetch per pinning (pinning again after an unpin fetches again)."""
    return _cut(f"{OutboxKind.PIN_FETCH}:{external_key}:{request_key}")


def archive_key(incident_id: int, run: int) -> str:
    """One archiving per resolution (``run`` counts reopen/resolve cycles)."""
    return f"{OutboxKind.ARCHIVE}:{incident_id}:{run}"


def handoff_key(schedule_id: int, at: datetime, role: str, person: str) -> str:
    """One DM per (schedule, hand-off instant, incoming/outgoing, person)."""
    return _cut(f"{OutboxKind.ONCALL_DM}:{schedule_id}:{int(at.timestamp())}:{role}:{person}")


def lid_share_key(incident_id: int, person_id: int) -> str:
    """One share of the incident's document per person, ever (sharing is idempotent at
    Google too: a person already holding access is skipped)."""
    return f"{OutboxKind.LID_SHARE}:{incident_id}:{person_id}"


def lid_postmortem_key(incident_id: int, cause: str) -> str:
    """One post-mortem draft per resolution: ``ev<id of the resolving event>``."""
    return _cut(f"{OutboxKind.LID_POSTMORTEM}:{incident_id}:{cause}")
