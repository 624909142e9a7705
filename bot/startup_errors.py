"""Start-up errors a new user meets, explained in one line.

``Runtime.build`` turns whatever opening and migrating the database raises (an unreachable
PostgreSQL, a missing database, a URL that does not parse, a driver that is not installed,
a SQLite folder that does not exist or cannot be written) into a ``ConfigError`` whose
message names the setting, the URL without its password, the cause and what to do. The CLI
prints that one line and exits 2; the traceback is shown only with ``--debug`` or
``IMAS_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

SETTING = "IMAS_DATABASE_URL"
_USERINFO = re.compile(r"(://[^/:@]*):[^/@]*@")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (also for URLs that do not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a garbage URL: fall back on a pattern
        return _USERINFO.sub(r"\1:***@", url)


def _where(url: str) -> str:
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return "the server"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def sqlite_folder_problem(url: str) -> str | None:
    """Why a SQLite database file could not be created, checked before connecting (the
    driver only says "unable to open database file")."""
    try:
        database = make_url(url).database
    except Exception:  # noqa: BLE001
        return None
    if not database or database == ":memory:":
        return None
    folder = Path(database).expanduser().absolute().parent
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not folder.exists():
        if not probe.is_dir():
            return f"{probe} is a file, not a folder: choose another path for the database"
        if not os.access(probe, os.W_OK | os.X_OK):
            return (
                f"the folder {folder} does not exist and {probe} is not writable by this "
                f"user: create it (mkdir -p {folder}) or choose another path"
            )
        return None  # IMAS creates it, private to its user (storage.db.create_private_file)
    if not folder.is_dir():
        return f"{folder} is a file, not a folder: choose another path for the database"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable by this user: fix its permissions or choose another path"
    return None


def _cause(url: str, exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    low = text.lower()
    if isinstance(exc, ArgumentError) and "parse" in low:
        return (
            "not a database URL: expected sqlite:///path/to/imas.db or "
            "postgresql://user:password@host:5432/database"
        )
    if isinstance(exc, NoSuchModuleError):
        kind = url.split(":", 1)[0]
        return f"unsupported database kind {kind!r}: use sqlite:/// or postgresql://"
    if isinstance(exc, ImportError):
        name = getattr(exc, "name", None) or text
        return (
            f"the database driver {name!r} is not installed: IMAS supports SQLite and "
            "PostgreSQL (postgresql:// uses psycopg, installed with IMAS)"
        )
    where = _where(url)
    if "connection refused" in low:
        return f"connection refused by {where}: is PostgreSQL running and listening there?"
    if "does not exist" in low and "database" in low:
        name = re.search(r'database "([^"]+)" does not exist', text)
        db = name.group(1) if name else "the database"
        return f"database {db!r} does not exist on {where}: create it (createdb {db})"
    if "password authentication failed" in low or "authentication failed" in low:
        return f"authentication failed on {where}: check the user name and password"
    if "role" in low and "does not exist" in low:
        return f"the user does not exist on {where}: check the user name"
    if (
        "could not translate host name" in low
        or "name or service not known" in low
        or "nodename nor servname" in low
        or "temporary failure in name resolution" in low
    ):
        return f"unknown host {where.rsplit(':', 1)[0]!r}: check the host name (DNS lookup failed)"
    if "timeout" in low or "timed out" in low:
        return f"no answer from {where} (timeout): check the host, port and firewall"
    if "unable to open database file" in low or isinstance(exc, OSError):
        problem = sqlite_folder_problem(url)
        if problem:
            return problem
        return f"cannot open the database file: {getattr(exc, 'strerror', None) or text}"
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return f"cannot open or migrate the database: {type(exc).__name__}: {first_line}"


def describe_database_error(url: str, exc: BaseException) -> str:
    """``IMAS_DATABASE_URL (<url without password>): <cause and hint>``, one line."""
    return f"{SETTING} ({redact_url(url)}): {_cause(url, exc)}"
