"""Configuration as code: whole-file validation with file:line:key errors, ${ENV}
secrets, idempotent apply, export without secrets."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot import config_file
from bot.domain.errors import ConfigError
from bot.runtime import Runtime
from handlers.cli import main
from storage import catalog

GOOD = """teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    current_on_call: oncall@example.com
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
    filters: {min_severity: SEV2_HIGH}
war_room: {severities: [SEV1_CRITICAL], archive_after_hours: 12}
"""
ENV = {"SLACK_BOT_TOKEN": "xoxb-secret-token-value", "PD_KEY": "pd-secret-routing-key"}


def test_errors_name_file_line_and_key():
    bad = GOOD.replace("TIER_1_CRITICAL", "TIER_9").replace(
        "owner_team: SRE Core", "owner_team: Nobody"
    )
    with pytest.raises(ConfigError) as err:
        config_file.parse(bad, ENV, name="imas.yml")
    text = str(err.value)
    assert "imas.yml:8: services[0].criticality" in text


def test_every_problem_is_reported_at_once():
    bad = GOOD.replace("owner_team: SRE Core", "owner_team: Nobody").replace(
        "default_channel: C0123456789}", "default_channel: C0123456789, colour: red}"
    )
    with pytest.raises(ConfigError) as err:
        config_file.parse(bad, ENV, name="imas.yml")
    text = str(err.value)
    assert "imas.yml:7: services[0].owner_team: unknown team 'Nobody'" in text
    assert "providers[0]" in text and "colour" in text


def test_missing_environment_variable():
    with pytest.raises(ConfigError) as err:
        config_file.parse(GOOD, {"SLACK_BOT_TOKEN": "xoxb-1"}, name="imas.yml")
    assert (
        "imas.yml:15: providers[1].config.routing_key: environment variable PD_KEY is not set"
        in str(err.value)
    )


def test_apply_is_idempotent_and_secrets_are_encrypted(make_settings):
    rt = Runtime.build(make_settings())
    document = config_file.parse(GOOD, ENV)
    with rt.transaction() as session:
        first = config_file.apply(session, rt, document)
    with rt.transaction() as session:
        second = config_file.apply(session, rt, document)
    assert len(first.created) == 4 and not second.changed
    with rt.transaction() as session:
        row = catalog.get_provider(session, name="PagerDuty")
        assert "pd-secret-routing-key" not in row.config_encrypted
        assert catalog.get_app_setting(session, key="war_room")["severities"] == ["SEV1_CRITICAL"]
        exported = config_file.export(session, rt)
    assert "xoxb-secret-token-value" not in exported and "pd-secret-routing-key" not in exported
    assert "${IMAS_PAGERDUTY_ROUTING_KEY}" in exported
    # The export is itself a valid configuration file.
    config_file.parse(
        exported,
        {
            "IMAS_SLACK_PRODUCTION_BOT_TOKEN": "x",
            "IMAS_PAGERDUTY_ROUTING_KEY": "y",
            "IMAS_PAGERDUTY_URL": "https://events.pagerduty.com/v2/enqueue",
        },
    )


def test_cli_validate_apply_and_incident_json(tmp_path, database_url):
    path = tmp_path / "imas.yml"
    path.write_text(GOOD.replace('routing_key: "${PD_KEY}"', "routing_key: k"))
    env = {"IMAS_DATABASE_URL": database_url, "IMAS_SECRET_KEY": "k", "SLACK_BOT_TOKEN": "xoxb-1"}
    runner = CliRunner()
    assert runner.invoke(main, ["config", "validate", str(path)], env=env).exit_code == 0
    broken = tmp_path / "broken.yml"
    broken.write_text("teams: [{name: }]\n")
    result = runner.invoke(main, ["config", "validate", str(broken)], env=env)
    assert result.exit_code == 2 and "broken.yml:1" in result.output
    assert runner.invoke(main, ["config", "apply", str(path)], env=env).exit_code == 0
    declared = runner.invoke(
        main,
        [
            "incident",
            "declare",
            "--title",
            "Redis down",
            "--service",
            "redis-prod",
            "--severity",
            "SEV3_MEDIUM",
            "--json",
            "--wait",
            "0",
        ],
        env=env,
    )
    assert declared.exit_code == 0, declared.output
    incident = json.loads(declared.stdout)
    listed = json.loads(runner.invoke(main, ["incident", "list", "--json"], env=env).stdout)
    assert [i["short_id"] for i in listed] == [incident["short_id"]]
    for key in (
        "short_id",
        "title",
        "description",
        "severity",
        "status",
        "service",
        "team",
        "lead",
        "lid_url",
        "war_room_channel_id",
        "war_room_url",
        "created_at",
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
    ):
        assert key in listed[0]
    shown = json.loads(
        runner.invoke(main, ["incident", "show", incident["short_id"], "--json"], env=env).stdout
    )
    assert shown["timeline"][0]["type"] == "STATUS_CHANGE"
    assert {"provider", "recipient", "state", "attempts", "last_error"} <= set(
        shown["deliveries"][0]
    )
    bad = runner.invoke(
        main,
        [
            "incident",
            "declare",
            "--title",
            "x",
            "--service",
            "nope",
            "--severity",
            "SEV3_MEDIUM",
            "--wait",
            "0",
        ],
        env=env,
    )
    assert bad.exit_code == 2 and "Unknown service" in bad.output
    acked = runner.invoke(main, ["incident", "ack", incident["short_id"], "--wait", "0"], env=env)
    assert acked.exit_code == 0
    again = runner.invoke(main, ["incident", "ack", incident["short_id"], "--wait", "0"], env=env)
    assert again.exit_code == 1 and "cannot acknowledge" in again.output
