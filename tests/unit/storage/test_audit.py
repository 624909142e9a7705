"""The audit log store: ``record`` joins the caller's transaction, rows can be neither
changed nor deleted (ORM and raw SQL, on SQLite and PostgreSQL), and ``list_entries``
filters and pages newest first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage import audit
from storage.db import alembic_config, make_engine, make_session_factory, transaction, upgrade
from storage.models import AppendOnlyError, AuditEntry, Base
from tests.conftest import PG_URL

WHO = audit.AuditActor(label="alice", kind="cli", ref="alice", door="cli")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def add(session: Session, **overrides: Any) -> AuditEntry:
    values: dict[str, Any] = {
        **WHO.fields(),
        "action": "token.create",
        "target_type": "token",
        "target": "1",
    }
    values.update(overrides)
    return audit.record(session, **values)


def count(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def seed_one(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        entry = add(session, changes={"role": [None, "admin"]})
        session.flush()
        return entry.id


def test_record_joins_the_callers_transaction(sessions: sessionmaker[Session]) -> None:
    session = sessions()
    entry = add(session, changes={"at": [None, datetime(2026, 1, 2, tzinfo=UTC)]})
    assert entry in session.new and entry.id is None  # added, not flushed
    assert entry.at.tzinfo is not None
    session.rollback()
    session.close()
    assert count(sessions) == 0

    with pytest.raises(RuntimeError), transaction(sessions) as session:
        add(session)
        session.flush()
        raise RuntimeError("the act failed")
    assert count(sessions) == 0

    with transaction(sessions) as session:
        add(session, changes={"at": [None, datetime(2026, 1, 2, tzinfo=UTC)]})
    with transaction(sessions) as session:
        row = session.scalars(select(AuditEntry)).one()
        assert row.changes == {"at": [None, "2026-01-02T00:00:00+00:00"]}
        assert row.at.tzinfo is not None and row.outcome == "ok"
        assert (row.actor, row.actor_kind, row.actor_ref, row.door) == (
            "alice",
            "cli",
            "alice",
            "cli",
        )


def test_record_checks_its_vocabulary_and_clips_labels(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        for bad in ({"actor_kind": "robot"}, {"door": "window"}, {"outcome": "maybe"}):
            with pytest.raises(ValueError):
                add(session, **bad)
        entry = add(session, actor="x" * 500, target="t" * 500)
        session.flush()
        assert len(entry.actor) == 200 and len(entry.target or "") == 255


def test_orm_cannot_update_or_delete(sessions: sessionmaker[Session]) -> None:
    entry_id = seed_one(sessions)
    attempts = [
        lambda s: setattr(s.get(AuditEntry, entry_id), "actor", "mallory"),
        lambda s: setattr(s.get(AuditEntry, entry_id), "changes", {}),
        lambda s: s.delete(s.get(AuditEntry, entry_id)),
    ]
    for attempt in attempts:
        with pytest.raises(AppendOnlyError), transaction(sessions) as session:
            attempt(session)
            session.flush()
    for statement in (
        update(AuditEntry).where(AuditEntry.id == entry_id).values(actor="mallory"),
        delete(AuditEntry).where(AuditEntry.id == entry_id),
    ):
        with pytest.raises(AppendOnlyError), transaction(sessions) as session:
            session.execute(statement)
    with transaction(sessions) as session:
        row = session.get(AuditEntry, entry_id)
        assert row is not None and row.actor == "alice"


def assert_raw_sql_refused(engine: Engine, entry_id: int) -> None:
    for sql in (
        "UPDATE audit_log SET actor = 'mallory' WHERE id = :id",
        "UPDATE audit_log SET changes = NULL",
        "DELETE FROM audit_log WHERE id = :id",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(DBAPIError) as err, engine.begin() as conn:
            conn.execute(text(sql), {"id": entry_id})
        assert "append-only" in str(err.value)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["alice"]


def test_database_refuses_raw_update_and_delete(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    assert_raw_sql_refused(engine, seed_one(sessions))


def test_create_all_schema_has_the_same_triggers(tmp_path: Any) -> None:
    """Schemas made by ``Base.metadata.create_all`` (not by the migrations) are guarded
    too."""
    engines = [make_engine(f"sqlite:///{tmp_path / 'create_all.db'}")]
    name = f"imas_create_all_{uuid.uuid4().hex[:8]}"
    admin = None
    if PG_URL.startswith("postgresql"):
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engines.append(make_engine(PG_URL.rsplit("/", 1)[0] + "/" + name))
    try:
        for engine in engines:
            Base.metadata.create_all(engine)
            assert_raw_sql_refused(engine, seed_one(make_session_factory(engine)))
            engine.dispose()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_migration_downgrade_and_upgrade(tmp_path: Any) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM sqlite_master")).scalars().all()
    assert not [n for n in names if "audit_log" in n]
    upgrade(engine)
    assert_raw_sql_refused(engine, seed_one(make_session_factory(engine)))
    engine.dispose()


def test_list_entries_filters_and_pages(sessions: sessionmaker[Session]) -> None:
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    specs = [
        ("incident.acknowledge", "U0ALICE01", "slack", "incident", "INC-AAAAAA", "ok"),
        ("incident.resolve", "U0ALICE01", "slack", "incident", "INC-AAAAAA", "ok"),
        ("incident.reopen", "7", "api", "incident", "INC-BBBBBB", "denied"),
        ("token.create", "bob", "cli", "token", "3", "ok"),
        ("config.apply", None, "system", "config", "imas.yml", "ok"),
        ("incident_x.odd", None, "system", "incident", None, "ok"),
    ]
    with transaction(sessions) as session:
        for minutes, (action, ref, door, ttype, target, outcome) in enumerate(specs):
            entry = audit.record(
                session,
                actor=ref or "IMAS",
                actor_kind="system" if door == "system" else "cli",
                actor_ref=ref,
                door=door,
                action=action,
                target_type=ttype,
                target=target,
                outcome=outcome,
            )
            entry.at = base + timedelta(minutes=minutes)  # pending insert: not an update

    def actions(**kwargs: Any) -> list[str]:
        with transaction(sessions) as session:
            total, rows = audit.list_entries(
                session, filters=audit.AuditFilter(**kwargs), offset=0, limit=100
            )
            assert total == len(rows)
            return [r.action for r in rows]

    assert actions() == [s[0] for s in reversed(specs)]  # newest first
    assert actions(action="incident.") == [
        "incident.reopen",
        "incident.resolve",
        "incident.acknowledge",
    ]
    assert actions(action="incident_") == ["incident_x.odd"]  # LIKE wildcards are literal
    assert actions(action="token.create") == ["token.create"]
    assert actions(actor_ref="U0ALICE01") == ["incident.resolve", "incident.acknowledge"]
    assert actions(actor="IMAS") == ["incident_x.odd", "config.apply"]
    assert actions(door="api") == ["incident.reopen"]
    assert actions(target_type="token") == ["token.create"]
    assert actions(target="INC-AAAAAA") == ["incident.resolve", "incident.acknowledge"]
    assert actions(outcome="denied") == ["incident.reopen"]
    assert actions(since=base + timedelta(minutes=4)) == ["incident_x.odd", "config.apply"]
    assert actions(until=base + timedelta(minutes=1)) == ["incident.acknowledge"]
    naive = (base + timedelta(minutes=5)).replace(tzinfo=None)
    assert actions(since=naive) == ["incident_x.odd"]

    with transaction(sessions) as session:
        total, rows = audit.list_entries(session, filters=audit.AuditFilter(), offset=2, limit=2)
        assert total == 6 and [r.action for r in rows] == ["token.create", "incident.reopen"]
        assert audit.entry_json(rows[0])["at"] == (base + timedelta(minutes=3)).isoformat()


def test_diff() -> None:
    assert audit.diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}
