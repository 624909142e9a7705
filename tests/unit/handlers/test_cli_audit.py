"""``imas audit list`` and the acts audited outside the incident flows: token create and
revoke, user create, config apply (one ``config.apply`` row with counts per kind, one row
per provider changed with field names only). No secret ever lands in an audit row."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot import config_file
from bot.runtime import Runtime
from handlers.cli import main
from storage import audit
from storage.models import ApiToken, ApiUser, AuditEntry

CONFIG = """teams:
  - name: SRE Core
    slack_channel_id: C0123456789
services:
  - name: redis-prod
    owner_team: SRE Core
  - name: postgres-main
    owner_team: SRE Core
providers:
  - name: Slack Production
    type: SLACK
    config: {bot_token: "${SLACK_BOT_TOKEN}", default_channel: C0123456789}
  - name: PagerDuty
    type: WEBHOOK
    config: {url: "${PD_URL}", format: pagerduty, routing_key: "${PD_KEY}"}
war_room: {severities: [SEV1_CRITICAL], archive_after_hours: 12}
"""
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-first-secret-token",
    "PD_URL": "https://events.pagerduty.com/v2/enqueue?key=url-secret-one",
    "PD_KEY": "pd-first-routing-key",
}
ROTATED = {
    "SLACK_BOT_TOKEN": "xoxb-second-secret-token",
    "PD_URL": SECRETS["PD_URL"],
    "PD_KEY": "pd-second-routing-key",
}


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        "IMAS_DATABASE_URL": database_url,
        "IMAS_SECRET_KEY": "test-secret-key",
        "LOGNAME": "opal",
        "USER": "opal",
    }


@pytest.fixture
def rt(make_settings: Any) -> Any:
    runtime = Runtime.build(make_settings())
    yield runtime
    runtime.close()


def rows(rt: Runtime) -> list[dict[str, Any]]:
    with rt.transaction() as session:
        return [audit.entry_json(r) for r in session.scalars(select(AuditEntry).order_by("id"))]


def run(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    return result


def test_token_create_and_revoke_are_audited(env: dict[str, str], rt: Runtime) -> None:
    created = run(env, "token", "create", "--name", "ci", "--role", "manager", "--json")
    assert created.exit_code == 0, created.output
    clear = json.loads(created.stdout)["token"]
    assert run(env, "token", "revoke", "ci").exit_code == 0
    assert run(env, "token", "revoke", "ci").exit_code == 1  # nothing left: no row

    with rt.transaction() as session:
        token = session.scalars(select(ApiToken)).one()
        token_id, token_hash = str(token.id), token.token_hash
    found = rows(rt)
    assert [(r["action"], r["target_type"], r["target"]) for r in found] == [
        ("token.create", "token", token_id),
        ("token.revoke", "token", token_id),
    ]
    for row in found:
        assert (row["actor"], row["actor_kind"], row["actor_ref"], row["door"]) == (
            "opal",
            "cli",
            "opal",
            "cli",
        )
        assert row["outcome"] == "ok"
    assert found[0]["changes"] == {"name": [None, "ci"], "role": [None, "manager"]}
    assert found[1]["changes"]["revoked_at"][0] is None
    dumped = json.dumps(found)
    assert clear not in dumped and token_hash not in dumped and clear[:10] not in dumped


def test_user_create_is_audited_without_password(env: dict[str, str], rt: Runtime) -> None:
    result = run(env, "user", "create", "dave", "--role", "responder", input="dave-password-1\n")
    assert result.exit_code == 0, result.output
    with rt.transaction() as session:
        user = session.scalars(select(ApiUser)).one()
        password_hash = user.password_hash
    [row] = rows(rt)
    assert (row["action"], row["target_type"], row["target"], row["actor"]) == (
        "user.create",
        "user",
        "dave",
        "opal",
    )
    assert row["changes"] == {"username": [None, "dave"], "role": [None, "responder"]}
    dumped = json.dumps(row)
    assert "dave-password-1" not in dumped and password_hash not in dumped


def test_config_apply_audits_counts_and_provider_field_names(
    env: dict[str, str], rt: Runtime, tmp_path: Any
) -> None:
    path = tmp_path / "imas.yml"
    path.write_text(CONFIG)
    first = run({**env, **SECRETS}, "config", "apply", str(path))
    assert first.exit_code == 0, first.output
    found = rows(rt)
    assert [(r["action"], r["target"]) for r in found] == [
        ("provider.create", "Slack Production"),
        ("provider.create", "PagerDuty"),
        ("config.apply", str(path)),
    ]
    assert all(r["door"] == "cli" and r["actor"] == "opal" for r in found)
    assert found[0]["changes"] == dict.fromkeys(
        ["type", "is_active", "filters", "config.bot_token", "config.default_channel"]
    )
    assert found[2]["changes"] == {
        "team": {"created": 1, "updated": 0, "removed": 0},
        "service": {"created": 2, "updated": 0, "removed": 0},
        "provider": {"created": 2, "updated": 0, "removed": 0},
        "war_room": {"created": 0, "updated": 1, "removed": 0},
    }
    assert found[2]["detail"] == "5 created, 1 updated, 0 unchanged"

    # Rotate two secrets and deactivate a provider, applied by the server at start-up.
    document = config_file.parse(
        CONFIG.replace("type: SLACK", "type: SLACK\n    is_active: false"), ROTATED
    )
    with rt.transaction() as session:
        report = config_file.apply(session, rt, document, source="imas.yml")
    assert report.counts == {"provider": {"created": 0, "updated": 2, "removed": 0}}
    later = rows(rt)[3:]
    assert [(r["action"], r["target"], r["changes"]) for r in later] == [
        (
            "provider.update",
            "Slack Production",
            {"is_active": None, "config.bot_token": None},
        ),
        ("provider.update", "PagerDuty", {"config.routing_key": None}),
        ("config.apply", "imas.yml", report.counts),
    ]
    assert all(
        (r["actor"], r["actor_kind"], r["actor_ref"], r["door"])
        == ("IMAS", "system", None, "system")
        for r in later
    )
    # Applying the same file again changes nothing: only the config.apply row.
    with rt.transaction() as session:
        config_file.apply(session, rt, document)
    [again] = rows(rt)[6:]
    assert again["action"] == "config.apply" and again["changes"] == {}

    dumped = json.dumps(rows(rt))
    for secrets in (SECRETS, ROTATED):
        for value in secrets.values():
            assert value not in dumped
    assert "url-secret-one" not in dumped


def test_audit_list(env: dict[str, str], rt: Runtime) -> None:
    assert run(env, "token", "create", "--name", "ci", "--role", "admin").exit_code == 0
    assert (
        run(env, "user", "create", "erin", "--role", "viewer", input="erin-password\n").exit_code
        == 0
    )
    with rt.transaction() as session:
        audit.record(
            session,
            actor="Alice",
            actor_kind="slack_user",
            actor_ref="U0ALICE01",
            door="slack",
            action="incident.reopen",
            target_type="incident",
            target="INC-AAAAAA",
            outcome="denied",
            detail="needs the manager role",
        )

    table = run(env, "audit", "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["AT", "(UTC)", "DOOR", "ACTOR", "ACTION", "TARGET"]
    assert "incident.reopen" in lines[1] and "incident:INC-AAAAAA" in lines[1]
    assert "DENIED needs the manager role" in lines[1]
    assert "user.create" in lines[2] and "token.create" in lines[3] and len(lines) == 4

    def listed(*args: str) -> list[str]:
        result = run(env, "audit", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["action"] for row in json.loads(result.stdout)]

    assert listed() == ["incident.reopen", "user.create", "token.create"]
    assert listed("--action", "token") == ["token.create"]
    assert listed("--actor", "U0ALICE01") == ["incident.reopen"]
    assert listed("--actor", "opal") == ["user.create", "token.create"]
    assert listed("--target", "erin") == ["user.create"]
    assert listed("--outcome", "denied") == ["incident.reopen"]
    assert listed("--limit", "1") == ["incident.reopen"]
    assert listed("--since", "1h") == ["incident.reopen", "user.create", "token.create"]
    assert listed("--since", "2999-01-01T00:00:00") == []
    assert listed("--since", "2000-01-01T00:00:00+02:00", "--action", "user") == ["user.create"]
    bad = run(env, "audit", "list", "--since", "last tuesday")
    assert bad.exit_code == 2 and "--since" in bad.output
    assert run(env, "audit", "list", "--limit", "0").exit_code == 2
    empty = run(env, "audit", "list", "--action", "nothing")
    assert empty.exit_code == 0 and empty.stdout == ""
