"""``imas serve`` against an unreachable or misconfigured database: one line naming the
URL (password masked) and the cause, exit 2, no traceback (issue 11 item 6)."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from handlers.cli import main


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://imas:hunter2-secret@127.0.0.1:{port}/imas",
        "mysql://imas:hunter2-secret@127.0.0.1:{port}/imas",  # no driver installed
        "sqlite:////etc/hostname/imas.db",
    ],
)
def test_serve_refuses_an_unusable_database_in_one_line(url: str) -> None:
    url = url.format(port=closed_port())
    result = CliRunner().invoke(
        main,
        ["serve"],
        env={"IMAS_DATABASE_URL": url, "IMAS_SECRET_KEY": "k", "IMAS_PORT": "0"},
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: IMAS_DATABASE_URL (")
    assert "hunter2" not in result.output and "Traceback" not in result.output
    assert url.split("://")[0] in lines[0]
