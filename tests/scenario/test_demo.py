"""``imas demo`` plays the seed guide against the Slack stand-ins; without them (they are a
separate distribution, ``pip install -e ./standins``) it says so in one line and exits 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

RUN_CLI = "import sys; from handlers.cli import main; sys.argv = ['imas', 'demo']; main()"
# ``sys.modules[name] = None`` makes the module unimportable, as if it were not installed.
WITHOUT_STANDINS = "import sys; sys.modules['imas_standins'] = None; " + RUN_CLI


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_demo_plays_the_seed_guide(tmp_path: Path) -> None:
    from handlers.terminal import display_width

    result = run(RUN_CLI, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Vérification 1 - the message in #sre-core:" in result.stdout
    assert "WAR_ROOM_CREATED" in result.stdout
    assert "fully set up" in result.stdout
    # Terminal text, not Slack markup, in 80 columns; no colour codes when not a terminal.
    lines = result.stdout.splitlines()
    assert max(display_width(line) for line in lines) <= 80, result.stdout
    assert not re.search(r"<[^<>\n]*\|[^<>\n]*>|<[#@!][A-Za-z0-9]", result.stdout)
    assert "\x1b[" not in result.stdout
    assert "• 📋 Runbook (https://wiki.example.com/runbooks/redis)" in result.stdout
    assert re.search(r"War Room: #inc-[0-9a-f]{6}-test-redis-cluster-down", result.stdout)
    assert result.stderr == ""  # the log lines it shows are in its own output


def test_demo_without_the_stand_ins_is_a_one_line_error(tmp_path: Path) -> None:
    result = run(WITHOUT_STANDINS, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "pip install -e ./standins" in lines[0]
    assert "Traceback" not in result.stderr
