"""Alert ingestion (SPEC §7): parsed webhook alerts in, alerts stored, incidents opened and
resolved.

``ingest`` handles one webhook request in one transaction:

1. Load the alert rules (``AlertRule`` rows, ``position`` order; a rule whose spec no
   longer validates is skipped with a warning) and take PostgreSQL advisory locks on every
   fingerprint and incident key of the request, so concurrent deliveries of the same
   alerts are processed one after the other.
2. For each ``ParsedAlert``, with its rule (``match_rule``: first match wins):

   * **Fold** into the latest stored alert with the same ``(source, fingerprint)`` when
     that alert is still firing, or was last seen inside the rule's suppression window
     (default 5 minutes without a rule), or when the new notification is a ``resolved``
     one (a resolution always closes the latest occurrence): ``count + 1``,
     ``last_seen_at``, ``status``/``ends_at`` updated. Otherwise **insert** a new alert
     (a new occurrence).
   * A firing alert without an open incident looks for the open incident of its group
     (``incident_key``: Alertmanager/Grafana ``groupKey``, else the fingerprint); if there
     is none and its rule says ``auto_create``, an incident is **declared** with the same
     flow as Slack (``declare_incident``: full orchestration through the outbox), with
     idempotency key ``alert:<hash of key>:<earliest startsAt of the group, else first
     seen>``. Alerts that match no rule never create an incident (they are stored, and
     join an open incident of their group if there is one). When the service (the rule's
     ``service``, else the alert's ``service|app|component|job`` label) is unknown or
     inactive, the alert is stored without incident and the response says why
     (``unrouted``).
   * Linking an alert to an incident writes an ``ALERT_RECEIVED`` timeline event; a
     linked alert going from firing to resolved writes ``ALERT_RESOLVED``.
   * **Re-fire**: a firing alert whose latest occurrence was resolved with its incident
     (not a replay of that occurrence: same ``startsAt``) follows the rule's
     ``on_refire`` (``AlertRuleSpec``): reopen the resolved incident, open a new one (a
     new occurrence, never folded), or ignore; each writes ``ALERT_REFIRED`` in the
     resolved incident's timeline (``_refire``).

3. **Auto-resolve**: an open incident whose alerts are now all resolved is resolved
   (``change_status`` with summary "All alerts resolved") when the rule of the alert that
   resolved says ``auto_resolve``.

Repeating a payload changes nothing but ``count``/``last_seen_at``: no new incident, no
timeline event, no notification. A concurrent duplicate that still trips a unique
constraint (``IntegrityError``) makes the whole transaction run once more.

Raises nothing for bad alerts (parsing happened before); database errors propagate (the
HTTP layer answers 503 for ``OperationalError``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import audit
from bot.alert_rules import (
    AlertRuleSpec,
    incident_key,
    match_rule,
    resolve_service,
    resolve_severity,
)
from bot.domain.actor import Actor
from bot.domain.alerts import ParsedAlert
from bot.domain.enums import SEVERITIES
from bot.domain.errors import InputError
from bot.domain.text import clean_text
from bot.flows.declare import TITLE_MAX, DeclareInput, declare_incident
from bot.flows.lifecycle import change_status
from bot.runtime import Runtime
from storage import alerts as alert_store
from storage import incidents as incident_store
from storage.models import Alert, Incident, Service

log = logging.getLogger(__name__)

DEFAULT_SUPPRESSION_MINUTES = 5
AUTO_RESOLVE_SUMMARY = "All alerts resolved"
# Column sizes of ``storage.models.Alert``.
_NAME_MAX = 500
_FINGERPRINT_MAX = 128
_GROUP_KEY_MAX = 500
_INCIDENT_KEY_MAX = 600
_DESCRIPTION_MAX = 10000


@dataclass
class Unrouted:
    """An alert that needed an incident but could not get one, and why."""

    alert: str
    fingerprint: str
    reason: str


@dataclass
class IngestResult:
    """What one webhook request did (the webhook's JSON answer)."""

    received: int = 0
    stored: int = 0
    deduplicated: int = 0
    created_incidents: list[str] = field(default_factory=list)
    resolved_incidents: list[str] = field(default_factory=list)
    reopened_incidents: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    unrouted: list[Unrouted] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "deduplicated": self.deduplicated,
            "created_incidents": self.created_incidents,
            "resolved_incidents": self.resolved_incidents,
            "reopened_incidents": self.reopened_incidents,
            "incidents": self.incidents,
            "unrouted": [
                {"alert": u.alert, "fingerprint": u.fingerprint, "reason": u.reason}
                for u in self.unrouted
            ],
        }


def webhook_actor(source: str) -> Actor:
    return Actor(label=f"{source} webhook", source="webhook")


def ingest(rt: Runtime, *, source: str, alerts: Sequence[ParsedAlert]) -> IngestResult:
    """Store ``alerts`` (all from ``source``) and open/resolve incidents, in one
    transaction; commit; wake the outbox. Retries the whole transaction once on an
    ``IntegrityError`` (a concurrent duplicate delivery)."""
    for attempt in (1, 2):
        try:
            with rt.transaction() as session:
                result = ingest_in_session(session, rt, source=source, alerts=alerts)
            break
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("alert ingestion raced with a concurrent delivery; retrying once")
    if result.incidents:
        rt.wake_outbox()
    return result


def load_rules(session: Session) -> list[AlertRuleSpec]:
    """The configured rules, in order. A stored spec that does not validate is skipped
    (``imas config apply`` validates them, so this only guards against manual edits)."""
    rules = []
    for row in alert_store.list_rules(session):
        try:
            rules.append(AlertRuleSpec.from_config({**row.spec, "name": row.name}))
        except InputError as exc:
            log.warning("ignoring invalid alert rule %r: %s", row.name, exc)
    return rules


def bounded_key(alert: ParsedAlert) -> str:
    """``incident_key(alert)``, hashed when it would not fit its column."""
    key = incident_key(alert)
    if len(key) <= _INCIDENT_KEY_MAX:
        return key
    return f"{alert.source}:sha256:{hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()}"


def bounded_fingerprint(alert: ParsedAlert) -> str:
    fingerprint = alert.fingerprint
    if len(fingerprint) <= _FINGERPRINT_MAX:
        return fingerprint
    return "sha256:" + hashlib.sha256(fingerprint.encode("utf-8", "replace")).hexdigest()


class _Batch:
    """State of one ingestion: rules, per-group first-start times, incidents touched."""

    def __init__(
        self, session: Session, rt: Runtime, source: str, alerts: Sequence[ParsedAlert]
    ) -> None:
        self.session = session
        self.rt = rt
        self.source = source
        self.actor = webhook_actor(source)
        self.now = rt.clock()
        self.rules = load_rules(session)
        self.result = IngestResult(received=len(alerts))
        self.open_by_key: dict[str, Incident] = {}
        self.resolve_candidates: dict[int, Incident] = {}
        self.group_start: dict[str, datetime] = {}
        # One query for every fingerprint of the payload instead of one per alert.
        self.latest = alert_store.latest_for_fingerprints(
            session, source=source, fingerprints=[bounded_fingerprint(a) for a in alerts]
        )
        self.keys_without_incident: set[str] = set()
        self.group_severity: dict[str, str] = {}
        for alert in alerts:
            if alert.status != "firing":
                continue
            key = bounded_key(alert)
            if alert.starts_at is not None:
                first = self.group_start.get(key)
                if first is None or alert.starts_at < first:
                    self.group_start[key] = alert.starts_at
            severity = resolve_severity(match_rule(self.rules, alert), alert)
            known = self.group_severity.get(key)
            if known is None or SEVERITIES.index(severity) < SEVERITIES.index(known):
                self.group_severity[key] = severity

    def note_incident(self, incident: Incident) -> None:
        if incident.short_id not in self.result.incidents:
            self.result.incidents.append(incident.short_id)


def ingest_in_session(
    session: Session, rt: Runtime, *, source: str, alerts: Sequence[ParsedAlert]
) -> IngestResult:
    """``ingest`` inside the caller's transaction (see the module docstring)."""
    alert_store.lock_keys(
        session,
        keys=[f"fp:{source}:{bounded_fingerprint(a)}" for a in alerts]
        + [f"key:{bounded_key(a)}" for a in alerts],
    )
    batch = _Batch(session, rt, source, alerts)
    for alert in alerts:
        _ingest_one(batch, alert)
    _auto_resolve(batch)
    return batch.result


def _ingest_one(batch: _Batch, alert: ParsedAlert) -> None:
    session = batch.session
    rule = match_rule(batch.rules, alert)
    window = timedelta(
        minutes=rule.suppression_window_minutes if rule else DEFAULT_SUPPRESSION_MINUTES
    )
    fingerprint = bounded_fingerprint(alert)
    key = bounded_key(alert)
    row = batch.latest.get(fingerprint)
    previous_status: str | None = None
    resolved_incident = _refired_from(batch, row, alert)
    policy = _refire_policy(batch, rule, resolved_incident) if resolved_incident else None
    if (
        row is not None
        and policy != "new_incident"  # a new incident gets a new occurrence
        and (
            row.status == "firing"
            or alert.status == "resolved"
            or row.last_seen_at >= batch.now - window
        )
    ):
        previous_status = row.status
        row.count += 1
        row.last_seen_at = batch.now
        row.status = alert.status
        if alert.status == "resolved":
            row.ends_at = alert.ends_at or row.ends_at or batch.now
        else:
            row.ends_at = None
        if row.starts_at is None:
            row.starts_at = alert.starts_at
        batch.result.deduplicated += 1
    else:
        row = Alert(
            source=batch.source,
            fingerprint=fingerprint,
            status=alert.status,
            name=alert.name[:_NAME_MAX],
            summary=alert.summary,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            group_key=alert.group_key[:_GROUP_KEY_MAX] if alert.group_key else None,
            incident_key=key,
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            first_seen_at=batch.now,
            last_seen_at=batch.now,
            count=1,
            raw=alert.raw,
            rule_name=rule.name if rule else None,
        )
        session.add(row)
        batch.latest[fingerprint] = row
        batch.result.stored += 1

    if resolved_incident is not None and policy is not None:
        _refire(batch, row, alert, rule, key, resolved_incident, policy)
        return
    linked = session.get(Incident, row.incident_id) if row.incident_id is not None else None
    if alert.status == "firing":
        refired = previous_status == "resolved"
        if linked is None or (refired and not linked.is_open):
            _link_to_incident(batch, row, alert, rule, key)
        elif linked.is_open:
            batch.open_by_key.setdefault(key, linked)
            batch.note_incident(linked)
    elif linked is not None and previous_status == "firing":
        incident_store.add_event(
            session,
            incident=linked,
            type="ALERT_RESOLVED",
            message=f"Alert resolved: {_label(alert)}",
            actor=batch.actor.label,
            source=batch.actor.origin,
            data={"alert_id": row.id, "source": batch.source, "fingerprint": fingerprint},
        )
        if rule is not None and rule.auto_resolve and linked.is_open:
            batch.resolve_candidates[linked.id] = linked
        batch.note_incident(linked)


def _utc(when: datetime | None) -> datetime | None:
    """Naive UTC (SQLite gives naive datetimes back, payloads aware ones)."""
    if when is not None and when.tzinfo is not None:
        return when.astimezone(UTC).replace(tzinfo=None)
    return when


def _refired_from(batch: _Batch, row: Alert | None, alert: ParsedAlert) -> Incident | None:
    """The resolved incident a firing ``alert`` fires again after, if it is a re-fire: its
    latest occurrence was resolved, was linked to an incident that is now resolved, and
    the notification is not a replay of that occurrence (same ``startsAt``)."""
    if alert.status != "firing" or row is None or row.status != "resolved":
        return None
    if row.incident_id is None:
        return None
    if alert.starts_at is not None and _utc(alert.starts_at) == _utc(row.starts_at):
        return None  # a late replay of the occurrence that was resolved
    incident = batch.session.get(Incident, row.incident_id)
    if incident is None or incident.is_open:
        return None
    return incident


def _refire_policy(batch: _Batch, rule: AlertRuleSpec | None, resolved: Incident) -> str:
    """``reopen``, ``new_incident`` or ``ignore`` (see ``AlertRuleSpec``); without a rule
    an alert opens nothing, so its re-fire is only noted."""
    if rule is None:
        return "ignore"
    if rule.on_refire != "new_incident":
        return rule.on_refire
    resolved_at, now = _utc(resolved.resolved_at), _utc(batch.now)
    if resolved_at is not None and now is not None and rule.reopen_within_minutes > 0:
        if now - resolved_at < timedelta(minutes=rule.reopen_within_minutes):
            return "reopen"
    return "new_incident"


def _refire(
    batch: _Batch,
    row: Alert,
    alert: ParsedAlert,
    rule: AlertRuleSpec | None,
    key: str,
    resolved: Incident,
    policy: str,
) -> None:
    """Apply the re-fire ``policy`` and say so in the timeline (``ALERT_REFIRED`` on the
    resolved incident; ``ALERT_RECEIVED`` on the incident the alert joins)."""
    session = batch.session
    why = f"on_refire: {rule.on_refire}" if rule else "no alert rule"
    if rule is not None and rule.on_refire == "new_incident" and policy == "reopen":
        why += f", resolved less than {rule.reopen_within_minutes} min ago"

    def note(message: str) -> None:
        incident_store.add_event(
            session,
            incident=resolved,
            type="ALERT_REFIRED",
            message=message,
            actor=batch.actor.label,
            source=batch.actor.origin,
            data={"alert_id": row.id, "source": batch.source, "fingerprint": row.fingerprint},
        )
        batch.note_incident(resolved)

    session.flush()  # the row's id, for the timeline
    already_open = batch.open_by_key.get(key) or alert_store.open_incident_for_key(session, key=key)
    if policy == "ignore":
        note(f"Alert fired again after resolution: {_label(alert)} (ignored: {why})")
        return
    if policy == "reopen" and (already_open is None or not already_open.is_open):
        previous = resolved.status
        change_status(session, batch.rt, incident=resolved, status="TRIGGERED", actor=batch.actor)
        audit.record(
            session,
            batch.actor,
            action="incident.reopen",
            target_type="incident",
            target=resolved.short_id,
            changes={"status": [previous, "TRIGGERED"]},
        )
        note(f"Alert fired again: {_label(alert)}; incident reopened ({why})")
        batch.result.reopened_incidents.append(resolved.short_id)
        batch.open_by_key[key] = resolved
        _link_to_incident(batch, row, alert, rule, key)
        return
    _link_to_incident(batch, row, alert, rule, key)
    joined = session.get(Incident, row.incident_id) if row.incident_id is not None else None
    if joined is not None and joined.id != resolved.id:
        note(f"Alert fired again: {_label(alert)}; it joined {joined.short_id} ({why})")
    else:
        note(f"Alert fired again after resolution: {_label(alert)}; no incident opened ({why})")


def _label(alert: ParsedAlert) -> str:
    if alert.summary and alert.summary != alert.name:
        return f"{alert.name} - {alert.summary}"
    return alert.name


def _link_to_incident(
    batch: _Batch, row: Alert, alert: ParsedAlert, rule: AlertRuleSpec | None, key: str
) -> None:
    session = batch.session
    incident = batch.open_by_key.get(key)
    if (incident is None or not incident.is_open) and key not in batch.keys_without_incident:
        incident = alert_store.open_incident_for_key(session, key=key)
    if incident is None:
        if rule is None or not rule.auto_create:
            batch.keys_without_incident.add(key)
            return
        incident = _declare_for(batch, row, alert, rule, key)
        if incident is None:
            return
    batch.open_by_key[key] = incident
    row.incident_id = incident.id
    row.incident_key = key
    session.flush()
    incident_store.add_event(
        session,
        incident=incident,
        type="ALERT_RECEIVED",
        message=f"Alert firing: {_label(alert)}",
        actor=batch.actor.label,
        source=batch.actor.origin,
        data={
            "alert_id": row.id,
            "source": batch.source,
            "fingerprint": row.fingerprint,
            "url": alert.url,
        },
    )
    batch.note_incident(incident)


def _declare_for(
    batch: _Batch, row: Alert, alert: ParsedAlert, rule: AlertRuleSpec, key: str
) -> Incident | None:
    session = batch.session
    service_name = resolve_service(rule, alert)
    if not service_name:
        batch.result.unrouted.append(
            Unrouted(
                alert.name,
                row.fingerprint,
                "no service: set the rule's 'service' or a service/app/component/job label",
            )
        )
        return None
    service = session.scalar(
        select(Service).where(func.lower(Service.name) == service_name.lower())
    )
    if service is None:
        batch.result.unrouted.append(
            Unrouted(alert.name, row.fingerprint, f"unknown service {service_name!r}")
        )
        return None
    if not service.is_active:
        batch.result.unrouted.append(
            Unrouted(alert.name, row.fingerprint, f"service {service.name!r} is inactive")
        )
        return None
    started = batch.group_start.get(key) or alert.starts_at or row.first_seen_at
    idempotency_key = (
        f"alert:{hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()[:40]}:"
        f"{started.isoformat()}"
    )
    data = DeclareInput(
        title=_title(alert),
        service=service.id,
        severity=batch.group_severity.get(key) or resolve_severity(rule, alert),
        description=_description(alert),
        detected_at=alert.starts_at,
    )
    try:
        with session.begin_nested():
            incident, created = declare_incident(
                session, batch.rt, data=data, actor=batch.actor, idempotency_key=idempotency_key
            )
    except IntegrityError:
        # A concurrent delivery declared it first (PostgreSQL without the advisory lock
        # would get here); its incident is committed, so it is visible now.
        found = incident_store.get_by_idempotency_key(session, key=idempotency_key)
        if found is None:
            raise
        incident, created = found, False
    except InputError as exc:
        batch.result.unrouted.append(Unrouted(alert.name, row.fingerprint, exc.message))
        return None
    if not created and not incident.is_open:
        # A replayed notification of an occurrence whose incident is over: leave it be.
        return None
    if created:
        batch.result.created_incidents.append(incident.short_id)
        log.info(
            "alert %s (%s) opened incident %s",
            alert.name,
            batch.source,
            incident.short_id,
            extra={"incident": incident.short_id},
        )
    return incident


def _title(alert: ParsedAlert) -> str:
    title = clean_text(alert.summary or alert.name)  # alerts are normalised, not refused
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1] + "…"
    return title or f"{alert.source} alert"


def _description(alert: ParsedAlert) -> str:
    lines = []
    if alert.description:
        lines.append(alert.description)
    lines.append(f"Alert: {alert.name} (from {alert.source})")
    if alert.labels:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())))
    if alert.url:
        lines.append(f"Source: {alert.url}")
    text = clean_text("\n".join(lines), multiline=True)
    return text[:_DESCRIPTION_MAX]


def _auto_resolve(batch: _Batch) -> None:
    for incident in batch.resolve_candidates.values():
        if not incident.is_open:
            continue
        if alert_store.firing_count(batch.session, incident_id=incident.id) > 0:
            continue
        previous = incident.status
        change_status(
            batch.session,
            batch.rt,
            incident=incident,
            status="RESOLVED",
            actor=batch.actor,
            summary=AUTO_RESOLVE_SUMMARY,
        )
        audit.record(
            batch.session,
            batch.actor,
            action="incident.resolve",
            target_type="incident",
            target=incident.short_id,
            changes={"status": [previous, "RESOLVED"]},
        )
        batch.result.resolved_incidents.append(incident.short_id)
        log.info(
            "incident %s resolved: all its alerts resolved",
            incident.short_id,
            extra={"incident": incident.short_id},
        )
