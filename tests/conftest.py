"""Shared fixtures.

The database backend comes from ``IMAS_TEST_DATABASE_URL`` (``.ci/run`` runs the suite
once on SQLite, once on PostgreSQL). On SQLite each test gets a fresh file copied from a
migrated template; on PostgreSQL the session gets its own throw-away database, migrated
once, and every table is emptied between tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from imas_standins.slack_api import FakeSlack
from imas_standins.slack_driver import SlackDriver
from sqlalchemy import create_engine, text

from bot.settings import Settings, load_settings
from handlers.server import Server
from storage.db import make_engine, upgrade
from storage.models import Base

ENV_PREFIXES = ("SLACK_", "IMAS_", "GOOGLE_")
PG_URL = os.environ.get("IMAS_TEST_DATABASE_URL", "")
SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-imas-test"
SEED_CHANNEL = "C0123456789"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's IMAS/Slack/Google settings or ``.env`` file."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    if not PG_URL.startswith("postgresql"):
        yield None
        return
    name = f"imas_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def database_url(pg_database: str | None, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    if pg_database is None:
        target = tmp_path / "imas.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    yield pg_database
    engine = create_engine(pg_database)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def make_settings(database_url: str) -> Any:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "secret_key": "test-secret-key",
            "port": 0,
            "outbox_poll_seconds": 0.2,
            "scheduler_enabled": False,
            "allow_private_webhook_targets": True,
            "http_read_timeout": 5.0,
        }
        values.update(overrides)
        return load_settings(**values)

    return build


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN)
    fake.start()
    fake.add_channel("sre-core", channel_id=SEED_CHANNEL, members=("U0ALICE01",))
    fake.add_user("U0ONCALL1", "oncall", email="oncall@example.com", real_name="On Call")
    yield fake
    fake.stop()


@pytest.fixture
def start_server(make_settings: Any, fake_slack: FakeSlack) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(**overrides: Any) -> Server:
        values = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SECRET,
            "slack_api_url": fake_slack.url,
        }
        values.update(overrides)
        server = Server(make_settings(**values))
        server.start_in_thread()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def driver(fake_slack: FakeSlack) -> Callable[[Server], SlackDriver]:
    def make(server: Server) -> SlackDriver:
        return SlackDriver(f"http://127.0.0.1:{server.port}/slack/events", SECRET, fake_slack)

    return make
