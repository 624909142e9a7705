"""Escalation policies: ordered steps, each with a delay and targets, repeated
``repeat`` times, chosen per team and severity. They drive the existing escalation task
(``bot.flows.scheduled``): the task is armed for the first step's delay when an incident
is declared ``TRIGGERED``, each firing pages one step and re-arms the task for the next
step's delay; acknowledging (any status but ``TRIGGERED``) cancels the task, on every
replica, because the task row is the state (claimed under a lease, fired once).

Configuration (``escalation_policies:`` and ``teams[].escalation_policy``, stored as the
``escalation_policies`` app setting — no schema change)::

    escalation_policies:
      - name: sev1
        repeat: 1                      # run the steps once more if still unacknowledged
        steps:
          - {delay_minutes: 0, targets: [oncall]}
          - {delay_minutes: 5, targets: ["schedule:secondary"]}
          - {delay_minutes: 10, targets: ["@here", head-of-sre@example.com]}
    teams:
      - name: SRE Core
        escalation_policy: {SEV1_CRITICAL: sev1, default: standard}   # or one name

Targets: ``oncall`` (the team's on-call now, through the router: DM and every matching
provider, pagers included), ``schedule:<name>`` (that schedule's on-call now, by DM),
``@here`` (the team channel, skipped for private incidents), ``previous`` (the previous
step's targets again), or a person (Slack user id or e-mail, by DM). A team without a
policy keeps the fixed chain (``escalation_timeout_minutes``, ``escalation_levels``).
Every step writes one ``ESCALATION`` timeline event (policy, step, who) and one
``incident.escalate`` audit row.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from bot import audit
from bot.domain.actor import SYSTEM
from bot.domain.enums import SEVERITIES
from bot.flows import paging
from bot.flows.oncall import compiled, current_for_team, find_schedule, resolve_person
from bot.flows.slack_steps import enqueue_post
from bot.oncall import who_is_on_call
from bot.presenter import view_of
from bot.router import route_event
from bot.runtime import Runtime
from providers.slack_blocks import escalation_here_text
from storage import catalog
from storage import incidents as incident_store
from storage.models import Incident, ScheduledTask, Team

SETTING_KEY = "escalation_policies"
CHANNEL_TARGETS = ("@here", "@channel", "here", "channel")


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay_minutes: int = Field(0, ge=0, le=10080)
    targets: list[str] = Field(min_length=1)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        cleaned = [t.strip() for t in value]
        for target in cleaned:
            if not target:
                raise ValueError("a target cannot be empty")
            if target.startswith("schedule:") and not target[len("schedule:") :].strip():
                raise ValueError("schedule: needs a schedule name (schedule:<name>)")
            plain = target.lower() in ("oncall", "previous", *CHANNEL_TARGETS)
            if not (plain or target.startswith("schedule:") or _is_person(target)):
                raise ValueError(
                    f"unknown target {target!r}: use oncall, schedule:<name>, @here, "
                    "previous, a Slack user id or an e-mail"
                )
        return cleaned


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    repeat: int = Field(0, ge=0, le=10)
    steps: list[StepSpec] = Field(min_length=1)


def _is_person(target: str) -> bool:
    return catalog.looks_like_slack_user(target) or "@" in target[1:]


def team_policy_names(value: str | dict[str, str] | None) -> dict[str, str]:
    """``teams[].escalation_policy`` as {severity or "default": policy name}."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"default": value}
    return dict(value)


def severity_keys_problem(mapping: dict[str, str]) -> str | None:
    bad = [k for k in mapping if k != "default" and k not in SEVERITIES]
    if bad:
        return f"unknown severities {bad}; use default or {', '.join(SEVERITIES)}"
    return None


def policy_for(session: Session, team: Team | None, severity: str) -> PolicySpec | None:
    if team is None:
        return None
    stored = catalog.get_app_setting(session, key=SETTING_KEY)
    names = (stored.get("teams") or {}).get(team.name) or {}
    name = names.get(severity) or names.get("default")
    spec = (stored.get("policies") or {}).get(name) if name else None
    return PolicySpec.model_validate(spec) if spec else None


def total_steps(policy: PolicySpec) -> int:
    return len(policy.steps) * (policy.repeat + 1)


def first_delay(policy: PolicySpec) -> timedelta:
    return timedelta(minutes=policy.steps[0].delay_minutes)


def _targets(policy: PolicySpec, index: int) -> list[str]:
    """The targets of step ``index`` (0-based over the repeats), ``previous`` expanded."""
    step = policy.steps[index % len(policy.steps)]
    out: list[str] = []
    for target in step.targets:
        if target.lower() == "previous":
            out += _targets(policy, index - 1) if index > 0 else []
        else:
            out.append(target)
    return out


def fire_step(session: Session, rt: Runtime, task: ScheduledTask, incident: Incident) -> bool:
    """Page step ``task.data["level"]`` of the incident's policy and re-arm the task for
    the next step (or finish). Returns whether anything was written."""
    team = incident.team
    data = dict(task.data or {})
    policy = policy_for(session, team, incident.severity)
    if incident.status != "TRIGGERED" or team is None or policy is None:
        task.state = "cancelled"
        return False
    now = rt.clock()
    index = int(data.get("level", 0))
    if index >= total_steps(policy):
        task.state = "done"
        return False
    number = index + 1
    waited = max(0, int((now - incident.created_at).total_seconds() // 60))
    text = f"Not acknowledged after {waited} min: escalation step {number} of {policy.name}"
    paged: list[str] = []
    for position, target in enumerate(_targets(policy, index)):
        key = f"escalated:{number}:{position}"
        lowered = target.lower()
        if lowered == "oncall":
            person = current_for_team(session, team, now)
            route_event(
                session,
                rt,
                incident=incident,
                event="escalated",
                event_key=key,
                text=text,
                actor="IMAS",
            )
            paged.append(
                f"on-call {person.label}" if person else f"on-call of {team.name} (nobody)"
            )
        elif lowered in CHANNEL_TARGETS:
            channel = team.slack_channel_id
            if channel and not incident.private:
                enqueue_post(
                    session,
                    incident=incident,
                    key=f"escalation:{incident.id}:{number}:{position}",
                    channel=channel,
                    text=escalation_here_text(view_of(session, rt, incident), waited),
                )
                paged.append(f"@here in <#{channel}>")
            else:
                why = "private incident" if incident.private else "no team channel"
                paged.append(f"@here skipped ({why})")
        elif target.startswith("schedule:"):
            name = target[len("schedule:") :].strip()
            row = find_schedule(session, name)
            ref = (
                who_is_on_call(compiled(session, row, team=row.team, since=now), now)
                if row is not None
                else None
            )
            person = resolve_person(session, ref)
            address = paging.person_address(person) if person else None
            if person is None or address is None:
                paged.append(f"schedule {name}: nobody on call")
                continue
            label = paging.notify_person(
                session,
                rt,
                incident=incident,
                person_ref=address,
                event="escalated",
                event_key=key,
                text=text,
                actor="IMAS",
            )
            paged.append(f"{label} (on call for {name})")
        else:
            label = paging.notify_person(
                session,
                rt,
                incident=incident,
                person_ref=target,
                event="escalated",
                event_key=key,
                text=text,
                actor="IMAS",
            )
            paged.append(label)
    message = f"{text}: paged {', '.join(paged) or 'nobody'}"
    incident_store.add_event(
        session,
        incident=incident,
        type="ESCALATION",
        message=message,
        actor="IMAS",
        source="scheduler",
        data={"policy": policy.name, "step": number, "paged": paged, "waited_minutes": waited},
    )
    before = incident.escalation_level or 0
    incident.escalation_level = max(before, number)
    audit.record(
        session,
        SYSTEM,
        action="incident.escalate",
        target_type="incident",
        target=incident.short_id,
        changes={
            "escalation_level": [before, incident.escalation_level],
            "paged": [None, paged],
            "policy": [None, policy.name],
        },
    )
    data["level"] = number
    task.data = data
    if number < total_steps(policy):
        delay = policy.steps[number % len(policy.steps)].delay_minutes
        task.due_at = now + timedelta(minutes=delay)
        task.state = "scheduled"
    else:
        task.state = "done"
    return True


def stored_setting(policies: list[PolicySpec], teams: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "policies": {p.name: p.model_dump(mode="json") for p in policies},
        "teams": {name: mapping for name, mapping in teams.items() if mapping},
    }
