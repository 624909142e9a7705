"""Issue 10 item 9: the SQLite database, its WAL/SHM files and the generated key file are
created 0600 (their folder 0700 when IMAS creates it), and ``imas doctor`` says when any
of them is open to other users."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.doctor import run_checks
from bot.runtime import Runtime
from handlers.cli import main
from storage.models import AppSetting


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644, folders 0755
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_wal_shm_and_key_are_private(make_settings, tmp_path, loose_umask):
    folder = tmp_path / "state" / "imas"
    database = folder / "imas.db"
    rt = Runtime.build(make_settings(database_url=f"sqlite:///{database}", secret_key=None))
    try:
        with rt.transaction() as session:  # a write, so the WAL holds something
            session.add(AppSetting(key="probe", value={"x": 1}))
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        files.append(Path(f"{database}.key"))
        for path in files:
            assert path.exists(), path
            assert mode(path) == 0o600, (path, oct(mode(path)))
        assert mode(folder) == 0o700
        checks = {c.name: c for c in run_checks(rt)}
        assert checks["files at rest"].ok, checks["files at rest"].detail

        os.chmod(database, 0o644)
        os.chmod(Path(f"{database}.key"), 0o640)
        check = {c.name: c for c in run_checks(rt)}["files at rest"]
        assert not check.ok
        assert f"{database} (0644)" in check.detail and f"{database}.key (0640)" in check.detail
        assert "-wal" not in check.detail
    finally:
        rt.close()


def test_doctor_command_reports_exposed_files(tmp_path, loose_umask, monkeypatch):
    database = tmp_path / "imas.db"
    monkeypatch.setenv("IMAS_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(main, ["doctor"])
    assert "files at rest" in first.output and mode(database) == 0o600
    os.chmod(database, 0o604)
    second = CliRunner().invoke(main, ["doctor"])
    assert second.exit_code == 1
    assert "readable or writable by other users" in second.output and "0604" in second.output
