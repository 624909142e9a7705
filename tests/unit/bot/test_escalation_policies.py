"""Escalation policies driving the escalation task, with a controlled clock: per-severity
choice, each step once at its time, schedule targets, @here, previous, repeat, and
acknowledging stops everything (also with two processes)."""

from __future__ import annotations

import re

import pytest

from bot import config_file
from bot.domain.errors import ConfigError
from bot.flows import scheduled
from bot.runtime import Runtime
from storage.models import AuditEntry
from tests.unit.bot.test_scheduled import (  # noqa: F401 - fixtures
    change,
    clock,
    configure,
    events,
    make_rt,
    minutes_until,
    new_incident,
    rows,
    task,
)

POLICIES = """
teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    current_on_call: oncall@example.com
    escalation_timeout_minutes: 15
    escalation_policy: {SEV1_CRITICAL: sev1}
services:
  - name: redis-prod
    owner_team: SRE Core
providers:
  - name: Slack Production
    type: SLACK
    config: {bot_token: xoxb-unit-test}
schedules:
  - name: secondary
    layers:
      - {members: [second@example.com], rotation: weekly}
escalation_policies:
  - name: sev1
    repeat: 1
    steps:
      - {delay_minutes: 0, targets: [oncall]}
      - {delay_minutes: 1, targets: [boss@example.com]}
      - {delay_minutes: 2, targets: ["schedule:secondary"]}
      - {delay_minutes: 3, targets: ["@here", previous]}
"""


@pytest.fixture
def rt(make_rt) -> Runtime:  # noqa: F811
    runtime = make_rt()
    configure(runtime, POLICIES)
    return runtime


def paged(rt: Runtime) -> list[tuple[str, str]]:
    return [
        (r.recipient_kind, r.recipient)
        for r in rows(rt, "")
        if r.event == "escalated" or r.idempotency_key.startswith("escalation:")
    ]


def test_each_step_fires_once_at_its_time_then_repeats(rt, clock):  # noqa: F811
    short_id = new_incident(rt)  # SEV1: the policy
    assert minutes_until(clock, task(rt, short_id, "escalation").due_at) == pytest.approx(0)
    assert scheduled.run_due_tasks(rt) == 1
    assert ("user", "oncall@example.com") in paged(rt)
    assert scheduled.run_due_tasks(rt) == 0  # next step in 1 min
    clock.advance(seconds=59)
    assert scheduled.run_due_tasks(rt) == 0
    clock.advance(seconds=1)
    assert scheduled.run_due_tasks(rt) == 1
    assert paged(rt)[-1] == ("user", "boss@example.com")
    clock.advance(minutes=2)
    assert scheduled.run_due_tasks(rt) == 1
    assert paged(rt)[-1] == ("user", "second@example.com")
    clock.advance(minutes=3)
    assert scheduled.run_due_tasks(rt) == 1
    # @here in the team channel, and "previous": the secondary's on-call again.
    assert paged(rt)[-2:] == [("channel", "C0123456789"), ("user", "second@example.com")]
    steps = [e.data["step"] for e in events(rt, short_id, "ESCALATION")]
    assert steps == [1, 2, 3, 4]
    # repeat: 1 — the steps once more (first step's delay 0 → right after step 4's delay).
    assert scheduled.run_due_tasks(rt) == 1
    for minutes in (1, 2, 3):
        clock.advance(minutes=minutes)
        assert scheduled.run_due_tasks(rt) == 1
    assert task(rt, short_id, "escalation").state == "done"
    clock.advance(hours=1)
    scheduled.run_due_tasks(rt)  # reminders only (every 30 min for SEV1)
    assert [e.data["step"] for e in events(rt, short_id, "ESCALATION")] == list(range(1, 9))
    with rt.transaction() as session:
        audits = session.query(AuditEntry).filter_by(action="incident.escalate").all()
        assert len(audits) == 8 and audits[0].changes["policy"] == [None, "sev1"]


def test_acknowledging_stops_the_policy_on_every_process(rt, make_rt, clock):  # noqa: F811
    other = make_rt()
    short_id = new_incident(rt)
    assert scheduled.run_due_tasks(other) == 1
    clock.advance(minutes=1)
    change(other, short_id, "ACKNOWLEDGED")
    assert scheduled.run_due_tasks(rt) == 0 and scheduled.run_due_tasks(other) == 0
    clock.advance(hours=1)
    scheduled.run_due_tasks(rt), scheduled.run_due_tasks(other)  # reminders only
    assert len(events(rt, short_id, "ESCALATION")) == 1
    assert task(rt, short_id, "escalation").state == "cancelled"


def test_other_severities_keep_the_fixed_chain(rt, clock):  # noqa: F811
    short_id = new_incident(rt, "SEV3_MEDIUM")
    assert minutes_until(clock, task(rt, short_id, "escalation").due_at) == pytest.approx(15)
    assert "policy" not in task(rt, short_id, "escalation").data


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{SEV1_CRITICAL: sev1}", "{SEV9: sev1}", "teams[0].escalation_policy: unknown severities"),
        ("{SEV1_CRITICAL: sev1}", "nope", "unknown policy 'nope'"),
        ('"schedule:secondary"', '"schedule:third"', "unknown schedule 'third'"),
        ("targets: [boss@example.com]", "targets: [boss]", "unknown target 'boss'"),
        ("{delay_minutes: 1,", "{delay_minutes: -1,", "steps[1].delay_minutes"),
    ],
)
def test_policy_config_errors(old, new, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_file.parse(POLICIES.replace(old, new), {}, name="imas.yml")


def test_policies_export_and_reapply(rt):
    with rt.transaction() as session:
        exported = config_file.export(session, rt)
    document = config_file.parse(exported, {"IMAS_SLACK_PRODUCTION_BOT_TOKEN": "xoxb-unit-test"})
    assert [p.name for p in document.escalation_policies] == ["sev1"]
    assert document.teams[0].escalation_policy == {"SEV1_CRITICAL": "sev1"}
    with rt.transaction() as session:
        assert not config_file.apply(session, rt, document).changed
