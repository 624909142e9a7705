"""Issue 10 item 5: a captured signed Slack request cannot be replayed under another
Content-Type, bodies that do not parse as their type are 400/415 (never 500), and the
replay cache lives in the database, shared by every process."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from storage.models import SeenRequest
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config

FORM = "application/x-www-form-urlencoded"


def seen_rows(rt) -> int:
    with rt.transaction() as session:
        return session.scalar(select(func.count()).select_from(SeenRequest)) or 0


def slash_body(fake_slack) -> str:
    return urlencode(
        {
            "command": "/incident",
            "text": "",
            "team_id": "T0IMAS001",
            "user_id": "U0ALICE01",
            "channel_id": "C0GENERAL1",
            "trigger_id": fake_slack.new_trigger_id(),
            "response_url": fake_slack.response_url(),
        }
    )


def test_replay_under_any_content_type_runs_once(
    start_server, driver, fake_slack, tmp_path, database_url
):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    other = start_server()  # a second replica on the same database
    slack, slack2 = driver(server), driver(other)
    body = slash_body(fake_slack)
    ts = str(int(time.time()))
    assert slack.raw(body, FORM, timestamp=ts).status_code == 200
    fake_slack.wait_for("views.open")
    rows = seen_rows(server.rt)
    assert rows == 1
    # the same signed bytes, other headers: never run again, never a 500
    assert slack.raw(body, "application/jsonx", timestamp=ts).status_code == 415
    assert slack.raw(body, "text/plain", timestamp=ts).status_code == 415
    assert slack.raw(body, "application/json", timestamp=ts).status_code == 400
    assert slack.raw(body, "application/json; charset=utf-8", timestamp=ts).status_code == 400
    for content_type in (FORM, FORM + "; charset=utf-8", "Application/X-WWW-Form-Urlencoded"):
        replay = slack.raw(body, content_type, timestamp=ts)
        assert replay.status_code == 200 and replay.headers["X-Slack-No-Retry"] == "1"
    replay = slack2.raw(body, FORM, timestamp=ts, headers={"X-Extra": "1"})
    assert replay.status_code == 200 and replay.headers["X-Slack-No-Retry"] == "1"
    time.sleep(0.3)
    assert fake_slack.count("views.open") == 1
    assert seen_rows(server.rt) == rows


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("payload=not-json", FORM, 400),
        ("payload=%5B1%2C2%5D", FORM, 400),  # a JSON list
        ('{"type":"event_callback"}', FORM, 400),  # JSON under a form header
        ("[1, 2]", "application/json", 400),
        ('{"type": ', "application/json", 400),
        ('"text"', "application/json", 400),
        ("command=/incident&text=payload", FORM, 400),
        ("a=b", "", 415),
        ("a=b", "multipart/form-data; boundary=x", 415),
    ],
)
def test_malformed_signed_bodies_are_4xx_and_write_nothing(
    body, content_type, status, start_server, driver, fake_slack
):
    server = start_server()
    slack = driver(server)
    response = slack.raw(body, content_type)
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert seen_rows(server.rt) == 0


def test_non_utf8_signed_body_is_400(start_server, driver, fake_slack):
    import requests
    from slack_sdk.signature import SignatureVerifier

    server = start_server()
    ts = str(int(time.time()))
    body = b"command=%2Fincident&text=\xff\xfe"
    # the signature covers bytes; Slack's verifier works on text, so sign latin-1 text
    verifier = SignatureVerifier("test-signing-secret-0123456789")
    signature = verifier.generate_signature(timestamp=ts, body=body.decode("latin-1"))
    response = requests.post(
        f"http://127.0.0.1:{server.port}/slack/events",
        data=body,
        headers={
            "Content-Type": FORM,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
        timeout=10,
    )
    assert response.status_code in (400, 401)
    assert seen_rows(server.rt) == 0


def test_event_retries_stay_keyed_by_event_id(start_server, driver, fake_slack):
    server = start_server()
    slack = driver(server)
    event = {
        "type": "event_callback",
        "team_id": "T0IMAS001",
        "event_id": "Ev0REPLAY1",
        "event": {"type": "app_home_opened", "user": "U0ALICE01", "tab": "home"},
    }
    first = slack.raw(json.dumps(event), "application/json")
    assert first.status_code == 200
    # Slack's retry: same event id, new timestamp and signature, other whitespace
    retry = slack.raw(json.dumps(event, indent=1), "application/json", timestamp=int(time.time()))
    assert retry.status_code == 200 and retry.headers["X-Slack-No-Retry"] == "1"
    wait_until(lambda: seen_rows(server.rt) == 1, message="one seen row")
