"""The post-mortem draft of an incident, written from what IMAS recorded (issue 15).

One set of facts, two renderings: ``to_markdown`` (REST ``GET
/api/v1/incidents/{ref}/postmortem/``, ``imas incident postmortem REF``, when Google is not
configured or for a download) and ``document_lines`` (the LID's POST-MORTEM section,
written at resolve by the ``lid_postmortem`` outbox step).

Contents: summary, impact (service, scopes, duration, MTTA, MTTR), the timeline with key
events marked (status and severity changes, pins, status updates), contributing alerts,
participants and their roles, and an empty skeleton for the review ("what went well",
"what went wrong", "action items"). MTTA and MTTR are computed exactly as the metrics API
computes them (``bot.kpis``): ``acknowledged_at - created_at`` and ``resolved_at -
created_at`` in seconds, never negative; the duration is the MTTR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kpis import duration_stats
from storage import incidents as incident_store
from storage.models import Alert, FollowUp, Incident, Person

# Events a reader looks for first; marked ★ in the timeline.
KEY_EVENTS = frozenset({"STATUS_CHANGE", "SEVERITY_CHANGE", "PINNED", "STATUS_UPDATE"})
# Delivery receipts are IMAS's business, not the story of the incident.
LEFT_OUT = frozenset({"ALERT_SENT", "NOTIFICATION_FAILED", "LID_SHARE_FAILED"})
SKELETON = ("What went well", "What went wrong", "Action items")
KEY_MARK = "★"


@dataclass(frozen=True)
class Line:
    at: datetime
    type: str
    message: str
    actor: str | None
    key: bool


@dataclass(frozen=True)
class PostMortem:
    short_id: str
    title: str
    severity: str
    status: str
    summary: str
    description: str
    service: str
    team: str | None
    scopes: tuple[str, ...]
    created_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    mtta_seconds: float | None
    mttr_seconds: float | None
    timeline: tuple[Line, ...]
    alerts: tuple[str, ...]
    participants: tuple[tuple[str, tuple[str, ...]], ...]
    followups: tuple[tuple[str, bool], ...] = ()  # (text, done)

    @property
    def duration_seconds(self) -> float | None:
        return self.mttr_seconds


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    """One incident's measure, through the metrics API's own statistics (so the number is
    the API's ``mean`` for this incident alone, rounding included)."""
    if start is None or end is None:
        return None
    mean = duration_stats([max(0.0, (end - start).total_seconds())])["mean"]
    return float(mean) if mean is not None else None


def build(session: Session, incident: Incident) -> PostMortem:
    """The post-mortem facts of ``incident`` (no access check: callers are flows)."""
    events = incident_store.timeline(session, incident_id=incident.id)
    timeline = tuple(
        Line(e.at, e.type, e.message, e.actor, e.type in KEY_EVENTS)
        for e in events
        if e.type not in LEFT_OUT
    )
    alerts = tuple(
        f"{a.name or a.fingerprint} ({a.source}, {a.status})"
        + (f": {a.summary}" if a.summary else "")
        for a in session.scalars(
            select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.id)
        )
    )
    roles: dict[int, list[str]] = {}
    if incident.lead_id is not None:
        roles.setdefault(incident.lead_id, []).append("lead")
    for role in sorted(incident.roles, key=lambda r: r.role):
        if role.role not in roles.get(role.person_id, []):
            roles.setdefault(role.person_id, []).append(role.role)
    if incident.declared_by_id is not None:
        roles.setdefault(incident.declared_by_id, []).append("declarer")
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(roles)))}
    participants = [
        (people[pid].label, tuple(names)) for pid, names in roles.items() if pid in people
    ]
    known = {label for label, _ in participants}
    for actor in dict.fromkeys(e.actor for e in events if e.actor and e.actor != "IMAS"):
        if actor not in known:
            participants.append((actor, ()))
            known.add(actor)
    followups = tuple(
        (
            f"#{f.id} {f.title}"
            + (f" — owner {f.owner.label}" if f.owner else "")
            + (f", due {f.due_date.isoformat()}" if f.due_date else ""),
            f.state == "done",
        )
        for f in session.scalars(
            select(FollowUp).where(FollowUp.incident_id == incident.id).order_by(FollowUp.id)
        )
    )
    return PostMortem(
        followups=followups,
        short_id=incident.short_id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        summary=incident.resolution_summary or "",
        description=incident.description or "",
        service=incident.service.name,
        team=incident.team.name if incident.team else None,
        scopes=tuple(s.name for s in incident.scopes),
        created_at=incident.created_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        mtta_seconds=_seconds(incident.created_at, incident.acknowledged_at),
        mttr_seconds=_seconds(incident.created_at, incident.resolved_at),
        timeline=timeline,
        alerts=alerts,
        participants=tuple(participants),
    )


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
    exact = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text} ({exact} s)"


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def impact_lines(pm: PostMortem) -> list[str]:
    return [
        f"Service: {pm.service}" + (f" (team {pm.team})" if pm.team else ""),
        f"Impact scopes: {', '.join(pm.scopes) if pm.scopes else '—'}",
        f"Severity: {pm.severity}",
        f"Declared: {_time(pm.created_at)} · acknowledged: {_time(pm.acknowledged_at)} · "
        f"resolved: {_time(pm.resolved_at)}",
        f"Duration: {human_duration(pm.duration_seconds)}",
        f"MTTA (time to acknowledge): {human_duration(pm.mtta_seconds)}",
        f"MTTR (time to resolve): {human_duration(pm.mttr_seconds)}",
    ]


def timeline_line(line: Line) -> str:
    mark = f"{KEY_MARK} " if line.key else ""
    actor = f" · {line.actor}" if line.actor else ""
    return f"{mark}{_time(line.at)} · {line.type} · {_one_line(line.message)}{actor}"


def participant_line(label: str, roles: tuple[str, ...]) -> str:
    return f"{label}: {', '.join(roles)}" if roles else f"{label}: participant"


def document_lines(pm: PostMortem) -> tuple[list[str], list[str]]:
    """(facts, skeleton) as document paragraphs. IMAS rewrites the facts if the incident
    is resolved again; the skeleton is written once and then belongs to the reviewers."""
    facts = [
        f"Post-mortem draft for {pm.short_id} — {_one_line(pm.title)} (written by IMAS)",
        "Summary",
        _one_line(pm.summary) or "—",
        "Impact",
        *impact_lines(pm),
        f"Timeline ({KEY_MARK} = key event)",
        *(timeline_line(line) for line in pm.timeline),
        "Contributing alerts",
        *(pm.alerts or ("—",)),
        "Participants and roles",
        *(participant_line(label, roles) for label, roles in pm.participants),
    ]
    skeleton: list[str] = []
    for heading in SKELETON:
        items = ["—"]
        if heading == "Action items" and pm.followups:
            items = [f"{'☑' if done else '☐'} {text}" for text, done in pm.followups]
        skeleton += [heading, *items]
    return facts, skeleton


def _md(text: str) -> str:
    """Text safe inside Markdown: no HTML, no accidental emphasis or links."""
    out = text.replace("\\", "\\\\")
    for ch in "`*_[]<>#|":
        out = out.replace(ch, "\\" + ch)
    return _one_line(out)


def to_markdown(pm: PostMortem) -> str:
    lines = [
        f"# Post-mortem: {_md(pm.short_id)} — {_md(pm.title)}",
        "",
        f"Status: **{pm.status}** · severity **{pm.severity}**",
        "",
        "## Summary",
        "",
        _md(pm.summary) or "—",
        "",
        "## Impact",
        "",
        *(f"- {_md(line)}" for line in impact_lines(pm)),
        "",
        f"## Timeline ({KEY_MARK} = key event)",
        "",
        *(f"- {_md(timeline_line(line))}" for line in pm.timeline),
        "",
        "## Contributing alerts",
        "",
        *((f"- {_md(a)}" for a in pm.alerts) if pm.alerts else ("—",)),
        "",
        "## Participants and roles",
        "",
        *(f"- {_md(participant_line(label, roles))}" for label, roles in pm.participants),
        "",
    ]
    for heading in SKELETON:
        items = ["- "]
        if heading == "Action items" and pm.followups:
            items = [f"- [{'x' if done else ' '}] {_md(text)}" for text, done in pm.followups]
        lines += [f"## {heading}", "", *items, ""]
    return "\n".join(lines)
