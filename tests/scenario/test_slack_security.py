"""Inbound Slack requests are authenticated before anything is parsed or written."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from storage.models import Incident, OutboxItem, SeenRequest, TimelineEvent
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config, declare_through_modal


def row_counts(rt) -> dict[str, int]:
    with rt.transaction() as session:
        return {
            m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
            for m in (Incident, OutboxItem, TimelineEvent, SeenRequest)
        }


SLASH = urlencode(
    {
        "command": "/incident",
        "text": "list",
        "team_id": "T0IMAS001",
        "user_id": "U0ALICE01",
        "channel_id": "C0GENERAL1",
        "trigger_id": "1.2.3",
    }
)


@pytest.mark.parametrize(
    "case", ["forged", "stale", "future", "non_numeric", "missing", "v1_prefix", "tampered"]
)
def test_bad_signatures_are_401_and_write_nothing(case, start_server, driver, fake_slack):
    server = start_server()
    slack = driver(server)
    before = row_counts(server.rt)
    now = int(time.time())
    if case == "forged":
        response = slack.raw(
            SLASH,
            "application/x-www-form-urlencoded",
            sign=False,
            timestamp=str(now),
            signature="v0=" + "0" * 64,
        )
    elif case == "stale":
        response = slack.raw(SLASH, "application/x-www-form-urlencoded", timestamp=str(now - 301))
    elif case == "future":
        response = slack.raw(SLASH, "application/x-www-form-urlencoded", timestamp=str(now + 301))
    elif case == "non_numeric":
        response = slack.raw(
            SLASH,
            "application/x-www-form-urlencoded",
            sign=False,
            timestamp="abc",
            signature="v0=00",
        )
    elif case == "missing":
        response = slack.raw(SLASH, "application/x-www-form-urlencoded", sign=False)
    elif case == "v1_prefix":
        good = slack.raw(SLASH, "application/x-www-form-urlencoded")
        assert good.status_code == 200
        before = row_counts(server.rt)
        response = slack.raw(
            SLASH + "&x=1",
            "application/x-www-form-urlencoded",
            sign=False,
            timestamp=str(now),
            signature="v1=" + "a" * 64,
        )
    else:  # body changed after signing
        from slack_sdk.signature import SignatureVerifier

        signature = SignatureVerifier("test-signing-secret-0123456789").generate_signature(
            timestamp=str(now), body=SLASH
        )
        response = slack.raw(
            SLASH.replace("list", "lisT"),
            "application/x-www-form-urlencoded",
            sign=False,
            timestamp=str(now),
            signature=signature,
        )
    assert response.status_code == 401
    assert row_counts(server.rt) == before
    assert fake_slack.count("views.open") == 0


def test_replayed_slash_command_is_a_noop(start_server, driver, fake_slack, tmp_path, database_url):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    slack = driver(server)
    body = urlencode(
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
    ts = str(int(time.time()))
    first = slack.raw(body, "application/x-www-form-urlencoded", timestamp=ts)
    second = slack.raw(body, "application/x-www-form-urlencoded", timestamp=ts)
    assert first.status_code == 200 and second.status_code == 200
    fake_slack.wait_for("views.open")
    time.sleep(0.3)
    assert fake_slack.count("views.open") == 1


def test_double_submission_declares_once(start_server, driver, fake_slack, tmp_path, database_url):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    slack = driver(server)
    declare_through_modal(slack, fake_slack)
    view = fake_slack.last_view()
    values = {
        "title": "[TEST] Redis Cluster Down",
        "service": "redis-prod",
        "severity": "SEV2_HIGH",
    }
    assert slack.submit_view(view, values).status_code == 200  # Slack's double click
    with server.rt.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 1
    wait_until(lambda: fake_slack.count("conversations.create") >= 1, message="war room")
    time.sleep(0.3)
    assert fake_slack.count("conversations.create") == 1


def test_invalid_modal_input_is_shown_inline(
    start_server, driver, fake_slack, tmp_path, database_url
):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    slack = driver(server)
    slack.slash("")
    fake_slack.wait_for("views.open")
    response = slack.submit_view(
        fake_slack.last_view(), {"title": "   ", "service": "redis-prod", "severity": "SEV2_HIGH"}
    )
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    assert "title" in response.json()["errors"]
    assert row_counts(server.rt)["incidents"] == 0
