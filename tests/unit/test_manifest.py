"""manifest.yml is a valid Slack app manifest and declares exactly what the code uses:
the command, the shortcuts, the events, and the scopes of every Web API method called."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "data" / "schemas" / "slack-app-manifest.schema.1.0.0.json"
CODE_DIRS = ("bot", "handlers", "providers")

# Bot scopes each Web API method needs (from Slack's method reference). Reading a channel
# kind needs both the public and the private scope because war rooms may be private.
METHOD_SCOPES = {
    "auth.test": set(),
    "bookmarks.add": {"bookmarks:write"},
    "bookmarks.list": {"bookmarks:read"},
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.getPermalink": set(),
    "conversations.archive": {"channels:manage", "groups:write"},
    "conversations.create": {"channels:manage", "groups:write"},
    # DMs too: a retried DM looks for its earlier copy in the DM's history (issue 11)
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.info": {"channels:read", "groups:read"},
    "conversations.invite": {"channels:manage", "groups:write"},
    "conversations.list": {"channels:read", "groups:read"},
    "conversations.open": {"im:write"},
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.setTopic": {"channels:manage", "groups:write"},
    "conversations.unarchive": {"channels:manage", "groups:write"},
    "pins.add": {"pins:write"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read.email", "users:read"},
    "views.open": set(),
    "views.publish": set(),
    "views.update": set(),
    "views.push": set(),
}
EVENT_SCOPES = {
    "reaction_added": {"reactions:read"},
    "reaction_removed": {"reactions:read"},
    "app_home_opened": set(),
}


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def source_files() -> list[Path]:
    files = []
    for folder in CODE_DIRS:
        files += list((ROOT / folder).rglob("*.py"))
    return files


def used_methods() -> set[str]:
    methods: set[str] = set()
    for path in source_files():
        text = path.read_text()
        methods |= set(re.findall(r'call\(\s*"([a-z]+\.[A-Za-z]+)"', text))
        for name in re.findall(r"client\.([a-z]+_[a-zA-Z_]+)\(", text):
            family, _, method = name.partition("_")
            parts = method.split("_")
            methods.add(family + "." + parts[0] + "".join(p.title() for p in parts[1:]))
    return methods


def used(pattern: str) -> set[str]:
    found: set[str] = set()
    for path in source_files():
        found |= set(re.findall(pattern, path.read_text()))
    return found


def test_manifest_validates_against_slack_schema():
    if not SCHEMA.exists():
        pytest.fail(f"Slack's manifest schema is vendored at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(manifest())


def test_manifest_declares_exactly_the_command_shortcuts_and_events():
    data = manifest()
    commands = {c["command"] for c in data["features"]["slash_commands"]}
    assert commands == used(r'app\.command\("(/[a-z-]+)"\)')
    shortcuts = {s["callback_id"] for s in data["features"].get("shortcuts", [])}
    assert shortcuts == used(r'app\.(?:shortcut|message_shortcut)\("([a-z_]+)"\)')
    events = set(data["settings"]["event_subscriptions"]["bot_events"])
    assert events == used(r'app\.event\("([a-z_]+)"\)') | (
        {"app_home_opened"} if data["features"]["app_home"]["home_tab_enabled"] else set()
    )


def test_manifest_scopes_are_exactly_those_the_code_needs():
    methods = used_methods()
    unknown = methods - set(METHOD_SCOPES)
    assert not unknown, f"add the scopes of {sorted(unknown)} to METHOD_SCOPES and manifest.yml"
    needed = {"commands"}
    for method in methods:
        needed |= METHOD_SCOPES[method]
    for event in manifest()["settings"]["event_subscriptions"]["bot_events"]:
        needed |= EVENT_SCOPES[event]
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed


# -------------------------------------------------------------- one table of subcommands


def test_usage_hint_help_and_readme_come_from_the_command_table():
    from handlers.slack.command_table import (
        COMMANDS,
        README_END,
        README_START,
        help_text,
        readme_list,
        usage_hint,
    )

    [incident] = [
        c for c in manifest()["features"]["slash_commands"] if c["command"] == "/incident"
    ]
    assert incident["usage_hint"] == usage_hint(), f'paste usage_hint: "{usage_hint()}"'
    readme = (ROOT / "README.md").read_text()
    start, end = readme.find(README_START), readme.find(README_END)
    assert 0 <= start < end, "README.md lost its incident-commands markers"
    assert readme[start : end + len(README_END)] == readme_list(), (
        "paste into README.md:\n" + readme_list()
    )
    text = help_text()
    for command in COMMANDS:
        assert f"`/incident {command.name}" in text
        assert all(f"`{alias}`" in text for alias in command.aliases)
    assert "`/incident resolve [summary]`" in text and "`/incident help`" in text
    assert "|reopen|" in usage_hint()


def test_the_command_table_is_exactly_what_slash_incident_dispatches():
    from handlers.slack.command_table import HELP_TEXT, dispatched_words
    from handlers.slack.commands import SUBCOMMANDS

    source = (ROOT / "handlers" / "slack" / "commands.py").read_text()
    declare_words = set(re.findall(r'"([a-z]+)"', source.split("if sub in (", 1)[1].split(")")[0]))
    assert set(SUBCOMMANDS) | declare_words == dispatched_words()
    assert SUBCOMMANDS["help"](None, {}, "") == HELP_TEXT


# ------------------------------------------------ README configuration snippets, checked


def readme_yaml_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```ya?ml\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_alertmanager_snippet_passes_amtool(tmp_path):
    import shutil
    import subprocess

    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip(
            "amtool is not installed (Debian package prometheus-alertmanager; .ci/run installs it)"
        )
    blocks = [b for b in readme_yaml_blocks() if b.startswith("# alertmanager.yml")]
    assert blocks, "README.md has no alertmanager.yml snippet"
    for block in blocks:
        path = tmp_path / "alertmanager.yml"
        path.write_text(block)
        result = subprocess.run(  # noqa: S603 - the real Alertmanager checker
            [amtool, "check-config", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_readme_imas_yml_snippets_pass_config_validate(tmp_path):
    """Each snippet is a part of one imas.yml: the seed first, then each other part added
    to it, checked by the real ``imas config validate``."""
    import subprocess
    import sys

    blocks = [b for b in readme_yaml_blocks() if not b.startswith("# alertmanager.yml")]
    assert len(blocks) >= 3
    seed, *parts = blocks
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAS_", "SLACK_"))}
    env["SLACK_BOT_TOKEN"] = "xoxb-readme"
    for index, part in enumerate(["", *parts]):
        path = tmp_path / f"imas-{index}.yml"
        path.write_text(seed + part)
        result = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "handlers.cli", "config", "validate", str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"README snippet {index}:\n{part}\n{result.stderr}"
