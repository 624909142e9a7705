"""SlackDriver against a tiny recording app server that verifies Slack signatures."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from imas_standins.slack_api import FakeSlack
from imas_standins.slack_driver import SlackDriver, build_state_values
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

SECRET = "s3cr3t-signing"


@dataclass
class Received:
    body: str
    headers: dict[str, str]
    signature_ok: bool

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body, keep_blank_values=True))

    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.form()["payload"])
        return parsed


@dataclass
class Recorder:
    """The 'bot': records each request and whether its Slack signature verifies."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0

    @property
    def last(self) -> Received:
        return self.received[-1]


@pytest.fixture
def app() -> Iterator[Recorder]:
    recorder = Recorder()
    verifier = SignatureVerifier(SECRET)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            try:
                ok = verifier.is_valid(
                    body=body,
                    timestamp=self.headers.get("X-Slack-Request-Timestamp", ""),
                    signature=self.headers.get("X-Slack-Signature", ""),
                )
            except ValueError:  # non-numeric timestamp
                ok = False
            recorder.received.append(Received(body, dict(self.headers.items()), ok))
            time.sleep(recorder.delay)
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


@pytest.fixture
def driver(app: Recorder, fake: FakeSlack) -> SlackDriver:
    return SlackDriver(app.url, SECRET, fake)


def option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value.title()}, "value": value}


def input_block(block_id: str, element: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": block_id},
        "element": element,
        "optional": True,
    }


ELEMENTS: dict[str, dict[str, Any]] = {
    "title": {"type": "plain_text_input", "action_id": "title"},
    "severity": {
        "type": "static_select",
        "action_id": "severity",
        "options": [option("sev1"), option("sev2")],
    },
    "service": {"type": "external_select", "action_id": "service"},
    "teams": {
        "type": "multi_static_select",
        "action_id": "teams",
        "options": [option("db"), option("web"), option("ops")],
    },
    "commander": {"type": "users_select", "action_id": "commander"},
    "responders": {"type": "multi_users_select", "action_id": "responders"},
    "conv": {"type": "conversations_select", "action_id": "conv"},
    "chan": {"type": "channels_select", "action_id": "chan"},
    "flags": {
        "type": "checkboxes",
        "action_id": "flags",
        "options": [option("page"), option("public")],
    },
    "impact": {
        "type": "radio_buttons",
        "action_id": "impact",
        "options": [option("low"), option("high")],
    },
    "customers": {"type": "number_input", "action_id": "customers", "is_decimal_allowed": False},
}
MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "declare",
    "private_metadata": '{"channel": "C0GENERAL1"}',
    "title": {"type": "plain_text", "text": "Declare"},
    "submit": {"type": "plain_text", "text": "Go"},
    "blocks": [input_block(f"b_{name}", element) for name, element in ELEMENTS.items()],
}


@pytest.fixture
def opened_view(fake: FakeSlack) -> dict[str, Any]:
    client = WebClient(token=fake.bot_token, base_url=fake.url)
    view: dict[str, Any] = client.views_open(trigger_id=fake.new_trigger_id(), view=MODAL)["view"]
    return view


# ----------------------------------------------------------------------------- slash


def test_slash_command_is_form_encoded_and_signed(
    app: Recorder, driver: SlackDriver, fake: FakeSlack
) -> None:
    response = driver.slash("declare db is down")
    assert response.status_code == 200
    got = app.last
    assert got.signature_ok
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = got.form()
    assert form["command"] == "/incident"
    assert form["text"] == "declare db is down"
    assert form["user_id"] == "U0ALICE01" and form["user_name"] == "alice"
    assert form["channel_id"] == "C0GENERAL1" and form["channel_name"] == "general"
    assert form["team_id"] == "T0IMAS001" and form["api_app_id"] == "A0IMAS001"
    assert {"token", "team_domain", "response_url", "trigger_id"} <= set(form)
    assert form["response_url"] == driver.last_response_url
    assert form["response_url"].startswith(f"{fake.base}/hooks/")
    # the trigger came from the fake, so the bot can open a modal with it
    client = WebClient(token=fake.bot_token, base_url=fake.url)
    assert client.views_open(trigger_id=form["trigger_id"], view=MODAL)["ok"]


# ----------------------------------------------------------------------------- views


def test_submit_view_builds_the_state_slack_sends(
    app: Recorder, driver: SlackDriver, opened_view: dict[str, Any]
) -> None:
    driver.submit_view(
        opened_view,
        {
            "title": "DB down",
            "severity": "sev1",
            "service": "payments",
            "teams": ["db", "ops"],
            "commander": "U0ALICE01",
            "responders": ["U0ALICE01", "U0BOB0001"],
            "conv": "C0GENERAL1",
            "chan": "C0GENERAL1",
            "flags": ["public"],
            "impact": "high",
            "customers": 42,
        },
    )
    got = app.last
    assert got.signature_ok
    payload = got.payload()
    assert payload["type"] == "view_submission"
    assert payload["user"]["id"] == "U0ALICE01"
    assert payload["team"]["id"] == "T0IMAS001"
    assert payload["trigger_id"] and payload["api_app_id"] == "A0IMAS001"
    view = payload["view"]
    for key in ("id", "hash", "callback_id", "private_metadata", "root_view_id"):
        assert view[key] == opened_view[key]
    values = view["state"]["values"]
    assert values["b_title"]["title"] == {"type": "plain_text_input", "value": "DB down"}
    assert values["b_severity"]["severity"]["selected_option"] == option("sev1")
    assert values["b_service"]["service"]["selected_option"]["value"] == "payments"
    assert [o["value"] for o in values["b_teams"]["teams"]["selected_options"]] == ["db", "ops"]
    assert values["b_commander"]["commander"]["selected_user"] == "U0ALICE01"
    assert values["b_responders"]["responders"]["selected_users"] == ["U0ALICE01", "U0BOB0001"]
    assert values["b_conv"]["conv"]["selected_conversation"] == "C0GENERAL1"
    assert values["b_chan"]["chan"]["selected_channel"] == "C0GENERAL1"
    assert values["b_flags"]["flags"]["selected_options"] == [option("public")]
    assert values["b_impact"]["impact"]["selected_option"] == option("high")
    assert values["b_customers"]["customers"] == {"type": "number_input", "value": "42"}


def test_untouched_inputs_report_empty_or_initial_state(opened_view: dict[str, Any]) -> None:
    values = build_state_values(opened_view, {})
    assert values["b_title"]["title"] == {"type": "plain_text_input", "value": None}
    assert values["b_severity"]["severity"]["selected_option"] is None
    assert values["b_teams"]["teams"]["selected_options"] == []
    assert values["b_commander"]["commander"]["selected_user"] is None
    assert values["b_responders"]["responders"]["selected_users"] == []
    assert values["b_flags"]["flags"]["selected_options"] == []
    assert values["b_customers"]["customers"]["value"] is None

    preset = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "blocks": [
            input_block("b", {**ELEMENTS["severity"], "initial_option": option("sev2")}),
            input_block("c", {"type": "plain_text_input", "action_id": "t", "initial_value": "x"}),
        ],
    }
    initial = build_state_values(preset, {})
    assert initial["b"]["severity"]["selected_option"] == option("sev2")
    assert initial["c"]["t"]["value"] == "x"


def test_submit_view_refuses_unknown_action_ids_and_options(
    driver: SlackDriver, opened_view: dict[str, Any]
) -> None:
    with pytest.raises(KeyError, match="nope"):
        driver.submit_view(opened_view, {"nope": "x"})
    with pytest.raises(ValueError, match="sev9"):
        driver.submit_view(opened_view, {"severity": "sev9"})


def test_view_ids_assigned_by_the_fake_are_used(
    app: Recorder, driver: SlackDriver, fake: FakeSlack
) -> None:
    client = WebClient(token=fake.bot_token, base_url=fake.url)
    bare = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "blocks": [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "x"},
                "element": {"type": "plain_text_input"},
            }
        ],
    }
    view = client.views_open(trigger_id=fake.new_trigger_id(), view=bare)["view"]
    block = view["blocks"][0]
    driver.submit_view(view, {block["element"]["action_id"]: "typed"})
    values = app.last.payload()["view"]["state"]["values"]
    assert values[block["block_id"]][block["element"]["action_id"]]["value"] == "typed"


# ----------------------------------------------------------------------------- clicks


def test_click_on_a_message_button(app: Recorder, driver: SlackDriver, fake: FakeSlack) -> None:
    client = WebClient(token=fake.bot_token, base_url=fake.url)
    ts = client.chat_postMessage(
        channel="C0GENERAL1",
        text="Incident declared",
        blocks=[
            {
                "type": "actions",
                "block_id": "incident_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "ack",
                        "value": "INC-1",
                        "text": {"type": "plain_text", "text": "Ack"},
                    }
                ],
            }
        ],
    )["ts"]
    driver.click("ack", channel_id="C0GENERAL1")
    got = app.last
    assert got.signature_ok
    payload = got.payload()
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0GENERAL1",
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": "C0GENERAL1", "name": "general"}
    assert payload["message"]["ts"] == ts and payload["message"]["text"] == "Incident declared"
    assert payload["response_url"] == driver.last_response_url
    assert payload["trigger_id"] == driver.last_trigger_id
    (action,) = payload["actions"]
    assert action["action_id"] == "ack" and action["block_id"] == "incident_actions"
    assert action["type"] == "button" and action["value"] == "INC-1"
    assert action["text"]["text"] == "Ack"

    driver.click("ack", "override", block_id="other", channel_id="C0GENERAL1", message_ts=ts)
    (action,) = app.last.payload()["actions"]
    assert action["value"] == "override" and action["block_id"] == "other"
    with pytest.raises(AssertionError, match="missing"):
        driver.click("missing", channel_id="C0GENERAL1")


def test_click_inside_a_view(
    app: Recorder, driver: SlackDriver, opened_view: dict[str, Any]
) -> None:
    driver.click("severity", "sev2", view=opened_view)
    payload = app.last.payload()
    assert payload["container"] == {"type": "view", "view_id": opened_view["id"]}
    assert payload["view"]["id"] == opened_view["id"]
    assert "b_title" in payload["view"]["state"]["values"]
    (action,) = payload["actions"]
    assert action["type"] == "static_select" and action["block_id"] == "b_severity"
    assert action["selected_option"] == option("sev2")
    assert "response_url" not in payload


def test_message_shortcut(app: Recorder, driver: SlackDriver) -> None:
    driver.message_shortcut(
        "declare_from_message",
        message_text="db is on fire",
        message_ts="1700000000.000100",
        channel_id="C0GENERAL1",
        user_id="U0ALICE01",
    )
    payload = app.last.payload()
    assert payload["type"] == "message_action"
    assert payload["callback_id"] == "declare_from_message"
    assert payload["message"]["text"] == "db is on fire"
    assert payload["message_ts"] == "1700000000.000100"
    assert payload["channel"]["id"] == "C0GENERAL1"
    assert payload["trigger_id"] and payload["response_url"]


# ----------------------------------------------------------------------------- events


def test_event_envelope_and_retry_headers(app: Recorder, driver: SlackDriver) -> None:
    event = {
        "type": "app_mention",
        "user": "U0ALICE01",
        "text": "<@U0IMASBOT> status",
        "channel": "C0GENERAL1",
        "ts": "1700000000.000200",
    }
    driver.event(event)
    first = app.last
    assert first.signature_ok
    assert first.headers["Content-Type"] == "application/json"
    body = json.loads(first.body)
    assert body["type"] == "event_callback"
    assert body["event"]["type"] == "app_mention" and body["event"]["event_ts"]
    assert body["team_id"] == "T0IMAS001" and body["api_app_id"] == "A0IMAS001"
    assert body["event_id"].startswith("Ev") and isinstance(body["event_time"], int)
    assert "X-Slack-Retry-Num" not in first.headers

    driver.event(event, event_id=body["event_id"], retry_num=1)
    retry = app.last
    assert json.loads(retry.body)["event_id"] == body["event_id"]
    assert retry.headers["X-Slack-Retry-Num"] == "1"
    assert retry.headers["X-Slack-Retry-Reason"] == "http_timeout"


def test_url_verification(app: Recorder, driver: SlackDriver) -> None:
    driver.url_verification("abc")
    assert json.loads(app.last.body) == {
        "token": driver.verification_token,
        "challenge": "abc",
        "type": "url_verification",
    }


# ----------------------------------------------------------------------------- raw / security


def test_raw_supports_forged_stale_and_malformed_requests(
    app: Recorder, driver: SlackDriver
) -> None:
    form = "application/x-www-form-urlencoded"
    assert driver.raw("a=1", form).status_code == 200
    assert driver.raw("a=1", form, signature="v0=" + "0" * 64).status_code == 401
    stale = int(time.time()) - 600
    assert driver.raw("a=1", form, timestamp=stale).status_code == 401
    assert app.last.headers["X-Slack-Request-Timestamp"] == str(stale)
    assert driver.raw("a=1", form, timestamp="not-a-number").status_code == 401
    unsigned = driver.raw("a=1", form, sign=False)
    assert unsigned.status_code == 401
    assert "X-Slack-Signature" not in app.last.headers
    driver.raw("a=1", form, headers={"X-Extra": "yes"})
    assert app.last.headers["X-Extra"] == "yes" and app.last.signature_ok


def test_an_explicit_limit_fails_like_slack_would(app: Recorder, fake: FakeSlack) -> None:
    impatient = SlackDriver(app.url, SECRET, fake, max_seconds=0.1)
    app.delay = 0.3
    with pytest.raises(AssertionError, match="operation_timeout"):
        impatient.slash("x")
    assert impatient.last_elapsed >= 0.3


def test_default_driver_asserts_outcomes_not_speed(app: Recorder, fake: FakeSlack) -> None:
    """Tests use the driver without a limit: a slow answer (a loaded machine) passes."""
    patient = SlackDriver(app.url, SECRET, fake)
    app.delay = 0.3
    assert patient.slash("x").status_code == 200
    assert patient.last_elapsed >= 0.3
