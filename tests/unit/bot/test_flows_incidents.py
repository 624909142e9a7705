"""The incident flows' contract beyond the access matrix: one audit row per committed
change, none for a rolled-back one, and caller-scoped idempotency keys."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.domain.actor import SYSTEM, Actor
from bot.domain.enums import AccessRole
from bot.domain.errors import ConflictError
from bot.flows import incidents, lifecycle
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from storage.models import AuditEntry, Service, Team, TimelineEvent


@pytest.fixture
def rt(make_settings: Any) -> Any:
    runtime = Runtime.build(make_settings())
    with runtime.transaction() as session:
        team = Team(name="SRE Core")
        session.add(team)
        session.flush()
        session.add(Service(name="redis-prod", owner_team_id=team.id))
    yield runtime
    runtime.close()


def audit_rows(rt: Runtime, **where: Any) -> list[AuditEntry]:
    with rt.reading() as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        return list(session.scalars(query))


def new_incident(rt: Runtime) -> str:
    incident, _ = declare(
        rt,
        data=DeclareInput(title="Cache down", service="redis-prod", severity="SEV2"),
        actor=SYSTEM,
    )
    return incident.short_id


def test_each_committed_change_is_audited_once_with_before_and_after(rt: Runtime) -> None:
    short_id = new_incident(rt)
    actor = Actor(label="ops", source="cli", ref="ops")
    incidents.set_status(rt, actor=actor, ref=short_id, status="ack")
    incidents.change_severity(rt, actor=actor, ref=short_id, severity="critical")
    incidents.add_note(rt, actor=actor, ref=short_id, text="failing over")
    incidents.set_status(rt, actor=actor, ref=short_id, status="resolve", summary="done")
    rows = audit_rows(rt, target=short_id)
    assert [r.action for r in rows] == [
        "incident.declare",
        "incident.acknowledge",
        "incident.severity",
        "incident.note",
        "incident.resolve",
    ]
    assert rows[1].changes == {"status": ["TRIGGERED", "ACKNOWLEDGED"]}
    assert rows[2].changes == {"severity": ["SEV2_HIGH", "SEV1_CRITICAL"]}
    assert rows[4].changes["status"] == ["ACKNOWLEDGED", "RESOLVED"]
    assert {(r.door, r.actor_kind, r.actor_ref) for r in rows[1:]} == {("cli", "cli", "ops")}


def test_a_change_already_in_effect_writes_no_audit_row(rt: Runtime) -> None:
    short_id = new_incident(rt)
    incidents.set_status(rt, actor=SYSTEM, ref=short_id, status="ACKNOWLEDGED")
    with pytest.raises(ConflictError):
        incidents.set_status(rt, actor=SYSTEM, ref=short_id, status="ACKNOWLEDGED")
    assert len(audit_rows(rt, target=short_id, action="incident.acknowledge")) == 1


def test_a_rolled_back_change_leaves_no_audit_row(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_id = new_incident(rt)

    def fail_after_writing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away mid-transaction")

    # The note, its timeline event and its outbox rows are written, then the transaction
    # fails before commit: nothing of it, the audit row included, may remain.
    monkeypatch.setattr(lifecycle.followups, "after_change", fail_after_writing)
    with pytest.raises(RuntimeError):
        incidents.add_note(rt, actor=SYSTEM, ref=short_id, text="lost")
    assert audit_rows(rt, target=short_id, action="incident.note") == []
    with rt.reading() as session:
        notes = session.scalar(
            select(func.count()).select_from(TimelineEvent).where(TimelineEvent.type == "NOTE")
        )
    assert notes == 0


def test_a_caller_key_is_scoped_to_its_caller(rt: Runtime) -> None:
    alice = Actor(label="alice", source="api", role=AccessRole.RESPONDER, ref="user:alice")
    mallory = Actor(label="mallory", source="api", role=AccessRole.RESPONDER, ref="user:mallory")
    data = DeclareInput(title="Private thing", service="redis-prod", severity="SEV3", private=True)
    first, created = declare(rt, data=data, actor=alice, caller_key="k-1")
    again, created_again = declare(rt, data=data, actor=alice, caller_key="k-1")
    assert created and not created_again and again.id == first.id
    with pytest.raises(ConflictError, match="another caller"):
        declare(rt, data=data, actor=mallory, caller_key="k-1")
    # A key that merely ends like another caller's is not confused with it.
    other, created_other = declare(rt, data=data, actor=mallory, caller_key="1")
    assert created_other and other.id != first.id


def test_the_cli_door_is_audited_as_the_local_operator(rt: Runtime, database_url: str) -> None:
    from click.testing import CliRunner

    from handlers.cli import main

    short_id = new_incident(rt)
    env = {"IMAS_DATABASE_URL": database_url, "IMAS_SECRET_KEY": "test-secret-key", "USER": "ops"}
    result = CliRunner().invoke(main, ["incident", "ack", short_id, "--wait", "0"], env=env)
    assert result.exit_code == 0, result.output
    [row] = audit_rows(rt, target=short_id, action="incident.acknowledge")
    assert (row.door, row.actor_kind, row.outcome) == ("cli", "cli", "ok")
    assert row.changes == {"status": ["TRIGGERED", "ACKNOWLEDGED"]}
