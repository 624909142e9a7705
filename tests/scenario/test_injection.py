"""Hostile text through the real HTTP app never reaches Slack as markup (issue 10.1).

Titles, descriptions, notes, resolution summaries and alert fields full of Slack control
sequences go in through a signed Slack modal, slash commands, the REST API and an alert
webhook; every string of every call the Slack stand-in received is then searched for a
control sequence IMAS did not build itself.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from imas_standins.slack_api import HANG_GUARD_SECONDS

from storage import auth
from tests.scenario.conftest import SEED_CHANNEL
from tests.scenario.test_lifecycle import ALICE, declare, settled
from tests.scenario.test_seed_guide import apply_seed_config

HOSTILE = (
    "<!channel> <!here> <!everyone> <!subteam^S0HOSTILE> <@U0VICTIM1> <#C0SECRET1> "
    "<https://evil.example|runbook> <mailto:x@evil.example|mail>"
)
CONTROL = re.compile(r"<(!|@|#|https?:|mailto:)")


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def built_by_imas(sequence: str) -> bool:
    """Mentions and links IMAS builds from ids and URLs it knows (its own users, channels
    and pages), which are allowed; anything from HOSTILE is not."""
    if re.fullmatch(r"<!date\^\d+\^\{time\}\|[^<>|]*>", sequence):
        return True  # a date token IMAS builds from a timestamp
    return not any(bad in sequence for bad in ("evil.example", "U0VICTIM1", "C0SECRET1", "<!"))


def rendered(args: dict[str, Any]) -> list[str]:
    """The strings Slack parses for mentions and links: a message's ``text``, a topic or
    purpose, and every ``mrkdwn`` text object in blocks, views and attachments
    (``plain_text`` and message metadata are shown or kept literally)."""
    found = [str(args[k]) for k in ("text", "topic", "purpose", "title") if args.get(k)]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
                found.append(value["text"])
            for key, inner in value.items():
                if key != "metadata":
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for key in ("blocks", "view", "attachments"):
        walk(args.get(key))
    return found


def hostile_markup(fake: Any) -> list[str]:
    found = []
    for call in fake.calls:
        for text in rendered(call.args):
            for match in re.finditer(r"<[^<>]*>", text):
                if CONTROL.match(match.group(0)) and not built_by_imas(match.group(0)):
                    found.append(f"{call.method}: {match.group(0)}")
    return found


def test_hostile_text_from_every_door_reaches_slack_escaped(
    tmp_path, database_url, start_server, driver, fake_slack
):
    apply_seed_config(tmp_path, database_url)
    server = start_server(webhook_token="hook-token-0123456789")
    slack = driver(server)
    fake_slack.add_user(ALICE, "alice", email="alice@example.com")

    # Slack modal: title and description.
    declare(slack, fake_slack, title=f"Cache {HOSTILE}", description=HOSTILE)
    data = settled(server)
    room = data["war_room_channel_id"]
    # Slash commands send text Slack-escaped; IMAS stores what the person typed.
    escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert slack.slash(f"note {escaped}", channel_id=room).status_code == 200
    assert slack.slash(f"resolve {escaped}", channel_id=room).status_code == 200
    resolved = settled(server, data["short_id"])
    assert resolved["resolution_summary"] == HOSTILE

    # REST: a title and description.
    with server.rt.transaction() as session:
        token = auth.create_token(session, name="rest", role="responder")[1]
    base = f"http://127.0.0.1:{server.port}"
    created = requests.post(
        f"{base}/api/v1/incidents/",
        json={
            "title": HOSTILE,
            "description": HOSTILE,
            "service": "redis-prod",
            "severity": "SEV1",
        },
        headers={"Authorization": f"Token {token}"},
        timeout=HANG_GUARD_SECONDS,
    )
    assert created.status_code == 201, created.text
    settled(server, created.json()["short_id"])

    announcements = [
        c
        for c in fake_slack.calls
        if c.method == "chat.postMessage" and c.args.get("channel") == SEED_CHANNEL
    ]
    assert len(announcements) >= 2
    found = hostile_markup(fake_slack)
    assert found == [], "\n".join(sorted(set(found)))
    # The text is still there for people to read, as text.
    assert any("&lt;!channel&gt;" in s for c in announcements for s in strings(c.args))
    # ... in the blocks too, which the walker above does reach.
    assert any(
        "&lt;!channel&gt;" in text
        for call in announcements
        for text in rendered({k: v for k, v in call.args.items() if k != "text"})
    )
