"""The audit log: who did what, through which door, to what, and whether it was allowed.

``record`` adds one ``AuditEntry`` to the caller's session: it is written with the act it
describes, in the same transaction, and disappears with it on rollback. Rows are never
changed or deleted (see ``storage.models.AuditEntry``).

Never pass secrets (tokens, passwords, provider configuration values) to ``record``: a
row is readable by every admin, forever. For such fields record the field *name* with a
``None`` value (``{"config.url": None}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from storage.models import AuditEntry, utcnow

ACTOR_KINDS = ("slack_user", "api_token", "api_user", "cli", "system", "webhook")
DOORS = ("slack", "api", "cli", "webhook", "system", "web", "python")
OUTCOMES = ("ok", "denied")
_LENGTHS = {
    "actor": 200,
    "actor_ref": 200,
    "action": 64,
    "target_type": 32,
    "target": 255,
    "request_id": 128,
}


@dataclass(frozen=True)
class AuditActor:
    """Who acts and through which door, for callers that pass it around:
    ``record(session, **who.fields(), action=..., ...)``."""

    label: str
    kind: str
    ref: str | None = None
    door: str = "system"
    request_id: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "actor": self.label,
            "actor_kind": self.kind,
            "actor_ref": self.ref,
            "door": self.door,
            "request_id": self.request_id,
        }


SYSTEM = AuditActor(label="IMAS", kind="system", ref=None, door="system")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def _clip(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    limit = _LENGTHS[name]
    return value if len(value) <= limit else value[: limit - 1] + "…"


def record(
    session: Session,
    *,
    actor: str,
    actor_kind: str,
    actor_ref: str | None,
    door: str,
    action: str,
    target_type: str,
    target: str | int | None,
    changes: Mapping[str, Any] | None = None,
    outcome: str = "ok",
    detail: str | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """Add one audit row to ``session`` and return it.

    The row joins the caller's transaction: this function neither flushes nor commits, so
    the row is written when the caller commits and vanishes if the caller rolls back. To
    record a refused act (``outcome="denied"``) whose own transaction is rolled back,
    record it in a transaction that commits.

    ``actor`` is a human label; ``actor_ref`` the stable id (Slack user id, token id,
    username). ``actor_kind`` is one of ``ACTOR_KINDS``, ``door`` one of ``DOORS``,
    ``outcome`` one of ``OUTCOMES`` (anything else is a programming error: ValueError).
    ``action`` is ``<area>.<verb>`` (``incident.acknowledge``, ``token.create``);
    ``changes`` is ``{field: [before, after]}`` and must hold no secret. Datetimes, enums
    and sets in ``changes`` are stored as JSON values; over-long labels are shortened.
    ``at`` is the application's clock (``storage.models.utcnow``) at the call.
    """
    if actor_kind not in ACTOR_KINDS:
        raise ValueError(f"actor_kind {actor_kind!r}: expected one of {', '.join(ACTOR_KINDS)}")
    if door not in DOORS:
        raise ValueError(f"door {door!r}: expected one of {', '.join(DOORS)}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    entry = AuditEntry(
        at=utcnow(),
        actor=_clip("actor", actor) or "",
        actor_kind=actor_kind,
        actor_ref=_clip("actor_ref", actor_ref),
        door=door,
        action=_clip("action", action) or "",
        target_type=_clip("target_type", target_type) or "",
        target=_clip("target", None if target is None else str(target)),
        changes=None if changes is None else _jsonable(changes),
        outcome=outcome,
        detail=detail,
        request_id=_clip("request_id", request_id),
    )
    session.add(entry)
    return entry


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields whose values differ (a field missing on
    one side counts as None)."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


@dataclass
class AuditFilter:
    """Filters of ``list_entries``; None means "any". ``action`` matches as a prefix
    (``incident`` finds ``incident.acknowledge``); ``actor`` matches ``actor_ref`` or the
    ``actor`` label exactly; ``since`` is inclusive, ``until`` exclusive."""

    action: str | None = None
    actor_ref: str | None = None
    actor: str | None = None
    door: str | None = None
    target_type: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def list_entries(
    session: Session, *, filters: AuditFilter | None = None, offset: int = 0, limit: int = 50
) -> tuple[int, list[AuditEntry]]:
    """Matching audit rows, newest first, and their total count before paging."""
    f = filters or AuditFilter()
    query = select(AuditEntry)
    if f.action:
        query = query.where(AuditEntry.action.startswith(f.action, autoescape=True))
    if f.actor_ref is not None:
        query = query.where(AuditEntry.actor_ref == f.actor_ref)
    if f.actor is not None:
        query = query.where(or_(AuditEntry.actor_ref == f.actor, AuditEntry.actor == f.actor))
    if f.door is not None:
        query = query.where(AuditEntry.door == f.door)
    if f.target_type is not None:
        query = query.where(AuditEntry.target_type == f.target_type)
    if f.target is not None:
        query = query.where(AuditEntry.target == f.target)
    if f.outcome is not None:
        query = query.where(AuditEntry.outcome == f.outcome)
    if f.since is not None:
        query = query.where(AuditEntry.at >= _aware(f.since))
    if f.until is not None:
        query = query.where(AuditEntry.at < _aware(f.until))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).offset(offset).limit(limit)
    )
    return total, list(rows)


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """The JSON form of a row (REST API, ``imas audit list --json``)."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat() if entry.at else None,
        "actor": entry.actor,
        "actor_kind": entry.actor_kind,
        "actor_ref": entry.actor_ref,
        "door": entry.door,
        "action": entry.action,
        "target_type": entry.target_type,
        "target": entry.target,
        "changes": entry.changes,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "request_id": entry.request_id,
    }
