"""One severity parser (``bot.domain.enums.parse_severity``) behind every door: the CLI,
the REST API, the configuration file and alert rules accept the same documented aliases
and list them when they refuse a spelling (issue 16 item 6)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot import config_file
from bot.alert_rules import AlertRuleSpec
from bot.domain.errors import ConfigError, InputError
from handlers.cli import main
from tests.api_helpers import Api

ALIASES = ["SEV2_HIGH", "SEV2", "sev2", "high", "High", "P2", "2", "sev2-high"]
LISTED = "SEV1…SEV4, critical/high/medium/low, P1…P4"
CATALOG = """teams:
  - name: SRE Core
    slack_channel_id: C0123456789
services:
  - name: redis-prod
    owner_team: SRE Core
"""


@pytest.mark.parametrize("alias", ALIASES)
def test_rest_accepts_every_alias(api: Api, alias: str) -> None:
    response = api.client.post(
        "/api/v1/incidents/",
        headers=api.auth("responder"),
        json={"title": "Cache down", "service": "redis-prod", "severity": alias},
    )
    assert response.status_code == 201, response.text
    assert response.json()["severity"] == "SEV2_HIGH"


def test_rest_lists_the_aliases_when_refusing(api: Api) -> None:
    response = api.client.post(
        "/api/v1/incidents/",
        headers=api.auth("responder"),
        json={"title": "Cache down", "service": "redis-prod", "severity": "SEV9"},
    )
    assert response.status_code == 400
    assert LISTED in response.text


def test_cli_accepts_every_alias_and_lists_them_when_refusing(tmp_path, database_url) -> None:
    env = {"IMAS_DATABASE_URL": database_url, "IMAS_SECRET_KEY": "aliases-secret"}
    runner = CliRunner()
    (tmp_path / "imas.yml").write_text(CATALOG)
    assert runner.invoke(main, ["config", "apply", "imas.yml"], env=env).exit_code == 0
    for alias in ALIASES:
        result = runner.invoke(
            main,
            ["incident", "declare", "--title", "x", "--service", "redis-prod"]
            + ["--severity", alias, "--wait", "0", "--json"],
            env=env,
        )
        assert result.exit_code == 0, (alias, result.output)
        assert json.loads(result.stdout)["severity"] == "SEV2_HIGH"
    bad = runner.invoke(
        main,
        ["incident", "declare", "--title", "x", "--service", "redis-prod"]
        + ["--severity", "urgent", "--wait", "0"],
        env=env,
    )
    assert bad.exit_code == 2 and "Unknown severity 'urgent'" in bad.output
    assert LISTED in bad.output


@pytest.mark.parametrize("alias", ALIASES)
def test_configuration_file_accepts_every_alias(alias: str) -> None:
    text = (
        CATALOG
        + "providers:\n  - name: Hook\n    type: WEBHOOK\n"
        + "    config: {url: 'https://hooks.example.com/x'}\n"
        + f"    filters: {{min_severity: '{alias}'}}\n"
        + f"war_room: {{severities: ['{alias}', critical]}}\n"
    )
    document = config_file.parse(text, {}, name="imas.yml")
    assert document.providers[0].filters.min_severity == "SEV2_HIGH"
    assert document.war_room is not None
    assert document.war_room.severities == ["SEV2_HIGH", "SEV1_CRITICAL"]


def test_configuration_file_lists_the_aliases_when_refusing() -> None:
    text = CATALOG + "war_room: {severities: [urgent]}\n"
    with pytest.raises(ConfigError) as err:
        config_file.parse(text, {}, name="imas.yml")
    assert "imas.yml:7: war_room.severities" in str(err.value)
    assert LISTED in str(err.value)


@pytest.mark.parametrize("alias", ALIASES)
def test_alert_rule_severity_mapping_accepts_every_alias(alias: str) -> None:
    rule = AlertRuleSpec.from_config(
        {
            "name": "r",
            "match": {"alertname": "Disk.*"},
            "severity_mapping": {"tier": {"gold": alias}},
        }
    )
    assert rule.severity_mapping == {"tier": {"gold": "SEV2_HIGH"}}


def test_alert_rule_lists_the_aliases_when_refusing() -> None:
    with pytest.raises(InputError) as err:
        AlertRuleSpec.from_config(
            {
                "name": "r",
                "match": {"alertname": "Disk.*"},
                "severity_mapping": {"tier": {"gold": "x"}},
            }
        )
    assert "severity_mapping.tier.gold" in err.value.message and LISTED in err.value.message
