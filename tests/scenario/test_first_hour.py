"""A new user's first hour (issue 16): every configuration or environment error is one line
naming the setting and the cause, exit 2, no traceback unless asked; commands are quiet by
default. Everything runs the real ``imas`` command in a fresh temporary folder."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from imas_standins.slack_api import HANG_GUARD_SECONDS

from tests.reliability.test_crash_recovery import free_port

PASSWORD = "s3cret-Pa55"
PG_HOST, PG_PORT = "127.0.0.1", 5432


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_", "GOOGLE_"))}
    env.update(extra)
    return env


def imas(
    args: list[str], cwd: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "handlers.cli", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def postgres_running() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=HANG_GUARD_SECONDS):
            return True
    except OSError:
        return False


def _cases() -> list[object]:
    closed = free_port()
    return [
        pytest.param(
            {"IMAS_DATABASE_URL": f"postgresql://imas:{PASSWORD}@127.0.0.1:{closed}/imas"},
            ["IMAS_DATABASE_URL", f"postgresql://imas:***@127.0.0.1:{closed}/imas"],
            "connection refused",
            id="unreachable-postgresql",
        ),
        pytest.param(
            {
                "IMAS_DATABASE_URL": (
                    f"postgresql://postgres:{PASSWORD}@{PG_HOST}:{PG_PORT}/imas_no_such_db"
                )
            },
            ["IMAS_DATABASE_URL", "'imas_no_such_db' does not exist", "createdb"],
            "does not exist",
            id="missing-database",
            marks=pytest.mark.skipif(
                not postgres_running(), reason=f"no PostgreSQL on {PG_HOST}:{PG_PORT}"
            ),
        ),
        pytest.param(
            {"IMAS_DATABASE_URL": "not a url at all"},
            ["IMAS_DATABASE_URL (not a url at all)", "sqlite:///"],
            "not a database URL",
            id="garbage-url",
        ),
        pytest.param(
            {"IMAS_DATABASE_URL": f"mysql+pymysql://imas:{PASSWORD}@127.0.0.1/imas"},
            ["IMAS_DATABASE_URL", "mysql+pymysql://imas:***@127.0.0.1/imas", "'pymysql'"],
            "is not installed",
            id="missing-driver",
        ),
        pytest.param(
            {"IMAS_DATABASE_URL": "sqlite:///{tmp}/a-file/imas.db"},
            ["IMAS_DATABASE_URL", "{tmp}/a-file is a file"],
            "not a folder",
            id="sqlite-folder-is-a-file",
        ),
        pytest.param(
            {"IMAS_CONFIG": "{tmp}/missing.yml"},
            ["IMAS_CONFIG", "{tmp}/missing.yml"],
            "cannot read",
            id="imas-config-missing",
        ),
        pytest.param(
            {"IMAS_CONFIG": "{tmp}/broken.yml"},
            ["IMAS_CONFIG", "{tmp}/broken.yml:1"],
            "teams",
            id="imas-config-invalid",
        ),
        pytest.param(
            {"IMAS_OUTBOX_WORKERS": "many"},
            ["IMAS_OUTBOX_WORKERS"],
            "integer",
            id="bad-setting",
        ),
    ]


@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"]], ids=["serve", "db-upgrade"])
@pytest.mark.parametrize(("env", "names", "cause"), _cases())
def test_environment_errors_are_one_line_exit_2(
    tmp_path: Path, command: list[str], env: dict[str, str], names: list[str], cause: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "broken.yml").write_text("teams: 12\n")
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    if command == ["db", "upgrade"] and "IMAS_CONFIG" in env:
        pytest.skip("IMAS_CONFIG is read by serve only")
    env.setdefault("IMAS_SECRET_KEY", "first-hour-secret")
    result = imas([*command, "--port", "0"] if command == ["serve"] else command, tmp_path, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    if lines[0] == "error: IMAS_CONFIG: invalid configuration:":
        lines = [" ".join(lines)]  # the file's problems: one line each, as config validate
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for name in names:
        assert name.replace("{tmp}", str(tmp_path)) in lines[0]
    assert cause in lines[0]
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--debug", "db", "upgrade"], {}), (["db", "upgrade"], {"IMAS_LOG_LEVEL": "DEBUG"})],
    ids=["--debug", "IMAS_LOG_LEVEL=DEBUG"],
)
def test_traceback_only_when_debugging(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    (tmp_path / "a-file").write_text("")
    url = f"sqlite:///{tmp_path}/a-file/imas.db"  # a folder that cannot exist
    quiet = imas(["db", "upgrade"], tmp_path, IMAS_DATABASE_URL=url)
    loud = imas(args, tmp_path, IMAS_DATABASE_URL=url, **env)
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()


def test_debug_level_from_dotenv_also_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / ".env").write_text(
        f"IMAS_LOG_LEVEL=DEBUG\nIMAS_DATABASE_URL=sqlite:///{tmp_path}/a-file/imas.db\n"
    )
    result = imas(["db", "upgrade"], tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_cli_commands_are_quiet_by_default(tmp_path: Path) -> None:
    first = imas(["db", "upgrade"], tmp_path)  # creates and migrates imas.db
    second = imas(["incident", "list"], tmp_path)
    assert (first.returncode, second.returncode) == (0, 0)
    assert first.stdout.strip() == "database is up to date"
    assert first.stderr == "" and second.stderr == ""
    assert "alembic" not in first.stderr + second.stderr


def test_bolt_does_not_warn_that_the_token_is_ignored(
    start_server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import BOT_TOKEN

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # as with ``imas serve``
    with caplog.at_level(logging.WARNING):
        start_server()
    bolt = [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")]
    assert not [m for m in bolt if "token" in m], bolt


CONFIG_WITH_REFS = """teams:
  - name: SRE Core
    slack_channel_id: C0123456789
services:
  - name: redis-prod
    owner_team: SRE Core
    criticality: TIER_1_CRITICAL
providers:
  - name: Slack Production
    type: SLACK
    config: {bot_token: "${SLACK_BOT_TOKEN}", default_channel: C0123456789}
  - name: PagerDuty
    type: WEBHOOK
    config: {url: "https://events.pagerduty.com/v2/enqueue", format: pagerduty, routing_key: "${PD_KEY}"}
"""


def test_config_validate_resolves_references_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / "imas.yml").write_text(CONFIG_WITH_REFS)
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv\n")
    result = imas(["config", "validate", "imas.yml"], tmp_path, PD_KEY="pd-from-environment")
    assert result.returncode == 0, result.stderr
    assert "imas.yml: valid (1 teams, 1 services" in result.stdout
    missing = imas(["config", "validate", "imas.yml"], tmp_path)
    assert missing.returncode == 2
    assert "environment variable PD_KEY is not set" in missing.stderr
    assert "SLACK_BOT_TOKEN" not in missing.stderr  # found in .env


def test_imas_config_at_start_resolves_references_from_dotenv(tmp_path: Path) -> None:
    import requests

    from tests.scenario.conftest import wait_until

    (tmp_path / "imas.yml").write_text(CONFIG_WITH_REFS.split("  - name: Slack Production")[0])
    (tmp_path / "imas.yml").write_text(
        (tmp_path / "imas.yml").read_text()
        + '  - name: PagerDuty\n    type: WEBHOOK\n    config: {url: "https://events.pagerduty.com'
        '/v2/enqueue", format: pagerduty, routing_key: "${PD_KEY}"}\n'
    )
    port = free_port()
    (tmp_path / ".env").write_text(
        f"IMAS_CONFIG=imas.yml\nPD_KEY=pd-from-dotenv\nIMAS_PORT={port}\n"
    )
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "handlers.cli", "serve"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[0])
        try:
            url = f"http://127.0.0.1:{port}/readyz"
            return requests.get(url, timeout=HANG_GUARD_SECONDS).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(ready, "imas serve ready")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=HANG_GUARD_SECONDS)[0]
    assert "applied imas.yml" in output
    exported = imas(["config", "export"], tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "- name: PagerDuty" in exported.stdout and "routing_key: ${" in exported.stdout


CATALOG = """teams:
  - name: SRE Core
    slack_channel_id: C0123456789
services:
  - name: redis-prod
    owner_team: SRE Core
    criticality: TIER_1_CRITICAL
"""


def start_serve(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    import requests

    from tests.scenario.conftest import wait_until

    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "handlers.cli", "serve"],
        cwd=tmp_path,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[0])
        try:
            url = f"http://127.0.0.1:{port}/readyz"
            return requests.get(url, timeout=HANG_GUARD_SECONDS).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(ready, "imas serve ready")
    except BaseException:
        proc.terminate()
        proc.communicate(timeout=HANG_GUARD_SECONDS)
        raise
    return proc


def test_links_follow_imas_port_when_base_url_is_not_set(tmp_path: Path) -> None:
    import requests

    (tmp_path / "imas.yml").write_text(CATALOG)
    assert imas(["config", "apply", "imas.yml"], tmp_path).returncode == 0
    token = imas(["token", "create", "--name", "t", "--role", "admin"], tmp_path).stdout.strip()
    for title in ("first", "second"):
        declared = imas(
            ["incident", "declare", "--title", title, "--service", "redis-prod"]
            + ["--severity", "SEV3", "--wait", "0"],
            tmp_path,
        )
        assert declared.returncode == 0, declared.stderr
    port = free_port()
    proc = start_serve(tmp_path, port, IMAS_PORT=str(port))
    try:
        page = requests.get(
            f"http://127.0.0.1:{port}/api/v1/incidents/?page_size=1",
            headers={"Authorization": f"Token {token}"},
            timeout=HANG_GUARD_SECONDS,
        ).json()
    finally:
        proc.terminate()
        output = proc.communicate(timeout=HANG_GUARD_SECONDS)[0]
    origin = f"http://127.0.0.1:{port}"
    assert page["count"] == 2
    assert page["results"][0]["url"].startswith(f"{origin}/dashboard/incidents/INC-")
    assert page["next"].startswith(f"{origin}/api/v1/incidents/?")
    assert f"links use {origin}" in output


def test_doctor_warns_about_a_loopback_base_url_with_slack(tmp_path: Path, fake_slack) -> None:
    from tests.conftest import BOT_TOKEN, SECRET

    slack = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.url,
        "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    }
    loopback = imas(["doctor"], tmp_path, IMAS_PORT="3999", **slack)
    assert (
        "[warn] base url: links use http://127.0.0.1:3999 (from IMAS_HOST/IMAS_PORT), a "
        "loopback address" in loopback.stdout
    ), loopback.stdout
    public = imas(["doctor"], tmp_path, IMAS_BASE_URL="https://imas.example.com", **slack)
    assert "[ok  ] base url: links use https://imas.example.com (IMAS_BASE_URL)" in public.stdout
    no_slack = imas(["doctor"], tmp_path)
    assert "[ok  ] base url: links use http://127.0.0.1:3000" in no_slack.stdout


def test_declare_with_a_dead_slack_reports_each_step_and_exits_1(tmp_path: Path) -> None:
    from tests.conftest import BOT_TOKEN, SECRET

    dead = free_port()  # nothing listens there
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"http://127.0.0.1:{dead}/api/",
        "IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    }
    (tmp_path / "imas.yml").write_text(CATALOG)
    assert imas(["config", "apply", "imas.yml"], tmp_path, **env).returncode == 0
    result = imas(
        ["incident", "declare", "--title", "Redis down", "--service", "redis-prod"]
        # Generous: declare returns as soon as only retries are left (about a second).
        + ["--severity", "SEV1", "--wait", str(int(HANG_GUARD_SECONDS) // 2)],
        tmp_path,
        **env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Incident declared: INC-")
    assert lines[0].endswith("(Redis down, SEV1_CRITICAL)")
    assert lines[1].strip().startswith("http://127.0.0.1:3000/dashboard/incidents/INC-")
    steps = lines[2:]
    assert any(s.startswith("  FAILED  war room") for s in steps), steps
    assert any(
        s.startswith("  FAILED  notify (created) via Slack (app) to channel:C0123456789")
        for s in steps
    ), steps
    assert all(s.startswith(("  ok", "  FAILED", "  waiting")) for s in steps), steps
    assert result.stderr.strip() == (
        "error: some steps failed or did not finish (see above); imas serve retries them"
    )
    assert "créé" not in result.stdout + result.stderr


def test_declare_with_nothing_to_send_exits_0(tmp_path: Path) -> None:
    (tmp_path / "imas.yml").write_text(CATALOG)
    assert imas(["config", "apply", "imas.yml"], tmp_path).returncode == 0
    result = imas(
        ["incident", "declare", "--title", "Disk full", "--service", "redis-prod"]
        + ["--severity", "low"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Incident declared: INC-")
    assert "(Disk full, SEV4_LOW)" in result.stdout and result.stderr == ""


def test_config_validate_reports_unknown_names_with_schema_errors(tmp_path: Path) -> None:
    (tmp_path / "imas.yml").write_text(
        """teams:
  - name: SRE Core
  - name: Payments
services:
  - name: redis-prod
    owner_team: SRE core
    criticality: TIER_9
  - name: billing-api
    owner_team: Platform
providers:
  - name: Hook
    type: WEBHOOK
    config: {url: "https://hooks.example.com/imas"}
    filters: {services: [redis-prd, billing-api], teams: [Paymnts]}
alert_rules:
  - name: redis
    match: {alertname: "Redis.*"}
    service: redis-prod-eu
"""
    )
    result = imas(["config", "validate", "imas.yml"], tmp_path)
    assert result.returncode == 2, result.stdout
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert lines[0] == "error: invalid configuration:"
    assert set(lines[1:]) == {
        "imas.yml:7: services[0].criticality: Input should be 'TIER_1_CRITICAL', 'TIER_2' or"
        " 'TIER_3'",
        "imas.yml:6: services[0].owner_team: unknown team 'SRE core': did you mean 'SRE Core'?",
        "imas.yml:9: services[1].owner_team: unknown team 'Platform': define it under teams",
        "imas.yml:14: providers[0].filters.services[0]: unknown service 'redis-prd': "
        "did you mean 'redis-prod'?",
        "imas.yml:14: providers[0].filters.teams[0]: unknown team 'Paymnts': "
        "did you mean 'Payments'?",
        "imas.yml:18: alert_rules[0].service: unknown service 'redis-prod-eu': "
        "did you mean 'redis-prod'?",
    }
    applied = imas(["config", "apply", "imas.yml"], tmp_path)
    assert applied.returncode == 2 and not (tmp_path / "imas.db").exists()


def test_long_commands_say_what_they_do_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "imas.yml").write_text(CATALOG)
    applied = imas(["config", "apply", "imas.yml"], tmp_path)
    assert applied.returncode == 0
    assert applied.stdout.splitlines()[-1] == "2 created, 0 updated, 0 unchanged"
    assert applied.stderr.splitlines() == [
        "applying imas.yml: teams (1)",
        "applying imas.yml: services (1)",
    ]
    doctor = imas(["doctor"], tmp_path)
    assert doctor.stderr.splitlines() == ["doctor: database", "doctor: google lid"]
    assert doctor.stdout.startswith("[ok  ] database:")


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = imas(["serve"], tmp_path, IMAS_PORT=str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: IMAS_HOST/IMAS_PORT (127.0.0.1:{port}): cannot listen: Address already in "
        "use: another process listens there: stop it or choose another IMAS_PORT"
    ]
