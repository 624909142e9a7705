"""``imas oncall [team] [--at]`` and ``imas oncall override``: answers from the engine,
bad input exits 2 with one line and writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from bot import config_file
from bot.runtime import Runtime
from handlers.cli import main
from storage.models import AuditEntry, ScheduleOverride

CONFIG = """teams:
  - name: SRE Core
    current_on_call: oncall@example.com
    schedule: sre-primary
  - name: Empty
schedules:
  - name: sre-primary
    timezone: America/New_York
    layers:
      - {members: [alice@example.com, bob@example.com], rotation: daily, start: 2026-03-06}
"""


@pytest.fixture
def env(database_url: str, make_settings: Any) -> dict[str, str]:
    rt = Runtime.build(make_settings())
    with rt.transaction() as session:
        config_file.apply(session, rt, config_file.parse(CONFIG, {}))
    rt.close()
    return {"IMAS_DATABASE_URL": database_url, "IMAS_SECRET_KEY": "k", "USER": "opal"}


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=env)


def test_oncall_at_a_time_across_dst(env):
    # New York springs forward on 2026-03-08: hand-offs stay at 09:00 local.
    result = run(env, "oncall", "SRE Core", "--at", "2026-03-08T09:30-04:00")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "SRE Core: alice@example.com until 2026-03-09 13:00 UTC (sre-primary)\n"
    )
    result = run(env, "oncall", "--at", "2026-03-08T08:30-04:00", "--json")
    answers = {a["team"]: a for a in json.loads(result.stdout)}
    assert answers["SRE Core"]["ref"] == "bob@example.com"
    assert answers["Empty"]["person"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["oncall", "Nope"], "No team named 'Nope'"),
        (["oncall", "--at", "tomorrow"], "--at: expected an ISO 8601 time"),
        (["oncall", "override", "SRE Core", "dave@example.com", "--for", "soon"], "not a duration"),
        (["oncall", "override", "SRE Core", "dave"], "Slack user"),
        (["oncall", "override", "Nope", "dave@example.com", "--for", "1h"], "No team or schedule"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(env, make_settings, args, message):
    result = run(env, *args)
    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]  # after the migration log lines
    assert last.startswith("error: ") and message in last
    assert "Traceback" not in result.output
    rt = Runtime.build(make_settings())
    with rt.transaction() as session:
        assert session.query(ScheduleOverride).count() == 0
    rt.close()


def test_override_from_the_cli_is_audited(env, make_settings):
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    end = start + timedelta(hours=3)
    result = run(
        env,
        "oncall",
        "override",
        "SRE Core",
        "dave@example.com",
        "--from",
        start.isoformat(),
        "--until",
        end.isoformat(),
    )
    assert result.exit_code == 0, result.output
    assert "dave@example.com covers sre-primary" in result.stdout
    at = (start + timedelta(hours=1)).isoformat()
    assert "SRE Core: dave@example.com" in run(env, "oncall", "SRE Core", "--at", at).stdout
    rt = Runtime.build(make_settings())
    with rt.transaction() as session:
        [entry] = session.query(AuditEntry).filter_by(action="oncall.override").all()
        assert (entry.door, entry.actor_ref) == ("cli", "opal")
    rt.close()


def test_doctor_warns_about_gaps_in_the_next_7_days(env):
    result = run(env, "doctor")
    assert result.exit_code == 0, result.output  # a warning, not a failure
    lines = result.stdout.splitlines()
    [warning] = [line for line in lines if line.startswith("[warn]")]
    assert warning.startswith(
        "[warn] on-call team Empty: nobody on call for 168h00 in the next 7 days (1 gap(s), first "
    )
    assert not any("SRE Core" in line and "on-call" in line for line in lines)
