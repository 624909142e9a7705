"""Engine, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, foreign keys on, and
every transaction opened with ``BEGIN IMMEDIATE``: writers queue on the busy timeout
instead of failing with "database is locked" when a read transaction tries to upgrade.
PostgreSQL is used through psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` / ``postgresql://`` and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for in-memory databases and other URLs)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (its folder 0700) unless it exists.

    Done before SQLite opens the database: SQLite gives the ``-wal`` and ``-shm`` files
    the permissions of the database file, so all three stay private to the IMAS user
    whatever the umask. Existing files are left as they are (``imas doctor`` warns).
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def exposed_files(paths: list[Path]) -> list[tuple[Path, int]]:
    """Those of ``paths`` that exist and that group or others may access, with their mode."""
    found = []
    for path in paths:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            found.append((path, mode))
    return found


def sqlite_files(url: str) -> list[Path]:
    """The database file and its WAL and shared-memory files (empty for non-SQLite)."""
    path = sqlite_file(normalise_url(url))
    if path is None:
        return []
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def make_engine(url: str, *, pool_size: int = 40) -> Engine:
    """Create an engine configured for IMAS on SQLite or PostgreSQL."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            create_private_file(path)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        else:  # request threads + outbox workers each hold a connection briefly
            kwargs.update(pool_size=pool_size, max_overflow=40, pool_timeout=30)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url, pool_size=pool_size // 2, max_overflow=40, pool_pre_ping=True, pool_timeout=30
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see module doc).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only sessions (see ``make_read_session_factory``) must not queue on the
        # write lock; every other transaction takes it up front.
        if conn.get_execution_options().get("imas_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads only. On SQLite they begin with a plain (deferred) ``BEGIN`` so
    they run beside writers instead of queueing for the write lock; a write attempted in
    one is a programming error (it may fail with "database is locked")."""
    return sessionmaker(bind=engine.execution_options(imas_readonly=True), expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations between processes starting at the same time."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(724101)"))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(724101)"))
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database + ".migrate.lock")
    create_private_file(lock_path)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> None:
    """Apply pending Alembic migrations (idempotent; safe to call from several processes)."""
    with _migration_lock(engine), engine.begin() as conn:
        cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def is_transient(exc: BaseException) -> bool:
    """A database error that goes away by running the transaction again (deadlock,
    serialization failure, SQLite lock timeout)."""
    text_ = str(getattr(exc, "orig", exc)).lower()
    return any(
        word in text_ for word in ("deadlock detected", "could not serialize", "database is locked")
    )


# Errors meaning "the database cannot be reached (or answer) right now": the doors answer
# them with a clear "database unavailable" (Slack ephemeral / modal error, HTTP 503 with
# Retry-After) instead of a 500, and the next request works once the database is back.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


def is_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) says the database is unreachable."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, UNAVAILABLE_ERRORS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def safe_url(url: str) -> str:
    """``url`` with its password masked (for messages and logs)."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(unparseable database URL)"


def cannot_open(url: str, exc: BaseException) -> str:
    """One line naming the database (no password) and why it cannot be used."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"cannot use the database {safe_url(url)}: {first[:300]}"
