"""``imas demo`` plays the seed guide against the Slack stand-ins; without them (they are a
separate distribution, ``pip install -e ./standins``) it says so in one line and exits 2."""

from __future__ import annotations

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
    result = run(RUN_CLI, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Vérification 1 - the message in #sre-core:" in result.stdout
    assert "WAR_ROOM_CREATED" in result.stdout
    assert "fully set up" in result.stdout


def test_demo_without_the_stand_ins_is_a_one_line_error(tmp_path: Path) -> None:
    result = run(WITHOUT_STANDINS, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "pip install -e ./standins" in lines[0]
    assert "Traceback" not in result.stderr
