"""``SlackDriver``: plays the human and Slack's delivery side against the bot's Request URL.

Every request is what Slack itself would POST to the app: slash commands
(form-urlencoded), interactivity (``payload=<url-quoted JSON>``) and Events API envelopes
(JSON), signed for real with ``slack_sdk.signature.SignatureVerifier`` (``v0`` HMAC-SHA256
over ``v0:<timestamp>:<body>``, headers ``X-Slack-Request-Timestamp`` and
``X-Slack-Signature``), and sent over HTTP with ``requests``.

Contract: every method returns the bot's ``requests.Response`` and records how long the bot
took in ``last_elapsed``. It raises ``AssertionError`` when the bot did not answer at all
(a hang guard of ``HANG_GUARD_SECONDS``, not a speed limit). Only when ``max_seconds`` is
given (the benches do, with Slack's 3 s) does a slower answer raise too: tests assert
outcomes, and speed is measured in ``bench/``, so a loaded machine never turns a test red.
"""

from __future__ import annotations

import json
import secrets
import string
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import requests
from slack_sdk.signature import SignatureVerifier

from imas_standins.slack_api import HANG_GUARD_SECONDS, FakeSlack

__all__ = ["DEFAULT_CHANNEL_ID", "DEFAULT_USER_ID", "SlackDriver", "build_state_values"]

DEFAULT_USER_ID = "U0ALICE01"
DEFAULT_CHANNEL_ID = "C0GENERAL1"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_TEXT_TYPES = {"plain_text_input", "email_text_input", "url_text_input", "number_input"}
_SINGLE_OPTION_TYPES = {"static_select", "external_select", "radio_buttons", "overflow"}
_MULTI_OPTION_TYPES = {"multi_static_select", "multi_external_select", "checkboxes"}
_STATIC_OPTION_TYPES = {
    "static_select",
    "multi_static_select",
    "radio_buttons",
    "checkboxes",
    "overflow",
}
# element type -> (state key, initial_* key, is_list)
_PICKER_KEYS: dict[str, tuple[str, str, bool]] = {
    "users_select": ("selected_user", "initial_user", False),
    "multi_users_select": ("selected_users", "initial_users", True),
    "conversations_select": ("selected_conversation", "initial_conversation", False),
    "multi_conversations_select": ("selected_conversations", "initial_conversations", True),
    "channels_select": ("selected_channel", "initial_channel", False),
    "multi_channels_select": ("selected_channels", "initial_channels", True),
    "datepicker": ("selected_date", "initial_date", False),
    "timepicker": ("selected_time", "initial_time", False),
    "datetimepicker": ("selected_date_time", "initial_date_time", False),
}
_UNSET = object()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def _options_of(element: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        options.extend(o for o in group.get("options") or [] if isinstance(o, dict))
    return options


def _option(element: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """The option dict whose ``value`` equals ``value`` (an option dict is taken as-is).

    External selects carry no options in the view, so a plain value becomes a synthetic
    option. Raises ``ValueError`` for a static element that has no such option.
    """
    if isinstance(value, dict):
        return dict(value)
    for option in _options_of(element):
        if option.get("value") == value:
            return dict(option)
    if element.get("type") in _STATIC_OPTION_TYPES:
        known = [o.get("value") for o in _options_of(element)]
        raise ValueError(
            f"{element.get('type')} {element.get('action_id')!r} has no option {value!r}; options: {known}"
        )
    return {"text": {"type": "plain_text", "text": str(value), "emoji": True}, "value": str(value)}


def _rich_text(value: Any) -> Any:
    if isinstance(value, dict) or value is None:
        return value
    return {
        "type": "rich_text",
        "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": str(value)}]}
        ],
    }


def element_state(element: Mapping[str, Any], value: Any = _UNSET) -> dict[str, Any]:
    """The ``state.values`` entry Slack reports for one element.

    ``value`` is what the user entered or picked (an option's ``value``, a user/channel id,
    a list for multi elements). When ``value`` is not given the element reports its
    ``initial_*`` value if it has one, otherwise its empty state (``value: None``,
    ``selected_option: None``, ``selected_options: []`` ...).
    """
    etype = str(element.get("type"))
    state: dict[str, Any] = {"type": etype}
    given = value is not _UNSET
    if etype in _TEXT_TYPES:
        raw = value if given else element.get("initial_value")
        state["value"] = None if raw is None else str(raw)
    elif etype in _SINGLE_OPTION_TYPES:
        if given:
            state["selected_option"] = None if value is None else _option(element, value)
        else:
            initial = element.get("initial_option")
            state["selected_option"] = dict(initial) if isinstance(initial, dict) else None
    elif etype in _MULTI_OPTION_TYPES:
        if given:
            state["selected_options"] = [_option(element, v) for v in _as_list(value)]
        else:
            state["selected_options"] = [dict(o) for o in element.get("initial_options") or []]
    elif etype in _PICKER_KEYS:
        key, initial_key, is_list = _PICKER_KEYS[etype]
        raw = value if given else element.get(initial_key)
        state[key] = _as_list(raw) if is_list else raw
    elif etype == "rich_text_input":
        state["rich_text_value"] = _rich_text(value if given else element.get("initial_value"))
    elif etype == "file_input":
        state["files"] = _as_list(value) if given else []
    else:
        state["value"] = value if given else None
    return state


def build_state_values(view: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Build a view's ``state.values`` (``{block_id: {action_id: state}}``).

    Walks the view's ``input`` blocks; ``values`` maps ``action_id`` -> what the user
    entered (see :func:`element_state`). Input blocks not named in ``values`` report their
    initial or empty state. Raises ``KeyError`` when ``values`` names an ``action_id`` that
    no input block of the view has.
    """
    state: dict[str, Any] = {}
    seen: set[str] = set()
    for index, block in enumerate(view.get("blocks") or []):
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        element = block.get("element")
        if not isinstance(element, dict):
            continue
        block_id = str(block.get("block_id") or f"block_{index}")
        action_id = str(element.get("action_id") or f"action_{index}")
        seen.add(action_id)
        entry = (
            element_state(element, values[action_id])
            if action_id in values
            else element_state(element)
        )
        state.setdefault(block_id, {})[action_id] = entry
    unknown = sorted(set(values) - seen)
    if unknown:
        raise KeyError(f"action_id(s) {unknown} not among the view's input blocks {sorted(seen)}")
    return state


def _find_element(blocks: Any, action_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(block, element) for the interactive element with ``action_id``, if any."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = [block.get("element"), block.get("accessory")]
        if block.get("type") == "actions":
            candidates.extend(block.get("elements") or [])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    return None


class SlackDriver:
    """Sends signed Slack requests to the bot at ``app_url`` (its Request URL).

    ``fake`` supplies ``trigger_id``s and ``response_url``s and resolves names, messages
    and views, so payloads match the fake workspace. Handy attributes after a call:
    ``last_trigger_id``, ``last_response_url``, ``last_payload`` (the dict sent, before
    encoding) and ``last_elapsed`` (seconds the bot took).
    """

    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        fake: FakeSlack,
        *,
        team_id: str = "T0IMAS001",
        api_app_id: str = "A0IMAS001",
        max_seconds: float | None = None,
        verification_token: str = "imas-verification-token",  # noqa: S107 - fake value
        team_domain: str = "imas-test",
    ) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.fake = fake
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.max_seconds = max_seconds
        self.request_timeout = max_seconds + 2.0 if max_seconds is not None else HANG_GUARD_SECONDS
        self.verification_token = verification_token
        self.team_domain = team_domain
        self.last_trigger_id: str | None = None
        self.last_response_url: str | None = None
        self.last_payload: dict[str, Any] | None = None
        self.last_elapsed: float = 0.0

    # ---------------------------------------------------------------- helpers

    def _user_name(self, user_id: str) -> str:
        user = self.fake.users.get(user_id)
        return user.name if user is not None else user_id.lower()

    def _channel_name(self, channel_id: str) -> str:
        channel = self.fake.channels.get(channel_id)
        if channel is None:
            return channel_id
        return "directmessage" if channel.is_im else channel.name

    def _user(self, user_id: str) -> dict[str, Any]:
        name = self._user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> dict[str, Any]:
        return {"id": self.team_id, "domain": self.team_domain}

    def _trigger(self) -> str:
        self.last_trigger_id = self.fake.new_trigger_id()
        return self.last_trigger_id

    def _interactive(self, payload: dict[str, Any]) -> requests.Response:
        self.last_payload = payload
        body = "payload=" + urllib.parse.quote(json.dumps(payload))
        return self.raw(body, FORM)

    # ---------------------------------------------------------------- slash command

    def slash(
        self,
        text: str = "",
        *,
        command: str = "/incident",
        user_id: str = DEFAULT_USER_ID,
        channel_id: str = DEFAULT_CHANNEL_ID,
        trigger_id: str | None = None,
    ) -> requests.Response:
        """POST a slash command (form-urlencoded), as Slack does when a user runs it.

        ``response_url`` is a fresh fake hook tied to the channel and user;
        ``trigger_id`` defaults to a fresh one from the fake.
        """
        self.last_response_url = self.fake.response_url(channel_id=channel_id, user_id=user_id)
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user_id,
            "user_name": self._user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.last_response_url,
            "trigger_id": trigger_id if trigger_id is not None else self._trigger(),
        }
        if trigger_id is not None:
            self.last_trigger_id = trigger_id
        self.last_payload = dict(fields)
        return self.raw(urllib.parse.urlencode(fields), FORM)

    # ---------------------------------------------------------------- interactivity

    def submit_view(
        self, view: Mapping[str, Any], values: Mapping[str, Any], *, user_id: str = DEFAULT_USER_ID
    ) -> requests.Response:
        """POST a ``view_submission`` for ``view`` (as returned by the fake's views.*).

        ``values`` maps ``action_id`` -> input (see :func:`build_state_values`; raises
        ``KeyError`` for an ``action_id`` not in the view).
        """
        submitted = dict(view)
        submitted["state"] = {"values": build_state_values(view, values)}
        submitted.setdefault("team_id", self.team_id)
        submitted.setdefault("app_id", self.api_app_id)
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": self._trigger(),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._interactive(payload)

    def close_view(
        self, view: Mapping[str, Any], *, user_id: str = DEFAULT_USER_ID
    ) -> requests.Response:
        """POST a ``view_closed`` (sent only for views with ``notify_on_close``)."""
        closed = dict(view)
        closed["state"] = {"values": build_state_values(view, {})}
        payload: dict[str, Any] = {
            "type": "view_closed",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "view": closed,
            "is_cleared": False,
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._interactive(payload)

    def click(
        self,
        action_id: str,
        value: Any = None,
        *,
        block_id: str | None = None,
        user_id: str = DEFAULT_USER_ID,
        channel_id: str | None = None,
        message_ts: str | None = None,
        view: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """POST a ``block_actions`` payload: the user clicked/picked ``action_id``.

        * In a message: pass ``channel_id`` (and ``message_ts``; without it the newest
          message of the channel, or ephemeral, holding ``action_id`` is used). The payload
          carries ``container``, ``channel``, ``message`` and a fresh ``response_url``.
        * In a view: pass ``view``; the payload carries ``container`` and the view with its
          current state.

        ``block_id`` and the element type come from the element found in the message/view;
        otherwise ``block_id`` is ``"b"`` and the type ``button``. For select-like elements
        ``value`` is the picked option value (or id(s)).
        """
        blocks: Any = None
        container: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if view is not None:
            blocks = view.get("blocks")
            container = {"type": "view", "view_id": view.get("id")}
            shown = dict(view)
            shown["state"] = {"values": build_state_values(view, {})}
            extra["view"] = shown
        if channel_id is not None:
            message, ephemeral = self._message_for(channel_id, message_ts, action_id)
            if message is not None:
                message_ts = str(message["ts"])
                if view is None:
                    blocks = message.get("blocks")
            if view is None:
                container = {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel_id,
                    "is_ephemeral": ephemeral,
                }
                if message is not None and not ephemeral:
                    extra["message"] = message
                self.last_response_url = self.fake.response_url(
                    channel_id=channel_id, message_ts=message_ts, user_id=user_id
                )
                extra["response_url"] = self.last_response_url
            extra["channel"] = {"id": channel_id, "name": self._channel_name(channel_id)}
        found = _find_element(blocks, action_id)
        element: dict[str, Any] = found[1] if found else {"type": "button", "action_id": action_id}
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or (str(found[0].get("block_id")) if found else "b"),
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if action["type"] == "button":
            action["text"] = element.get("text") or {"type": "plain_text", "text": action_id}
            button_value = value if value is not None else element.get("value")
            if button_value is not None:
                action["value"] = button_value
            if element.get("style"):
                action["style"] = element["style"]
        else:
            picked = element_state(element, value)
            picked.pop("type")
            action.update(picked)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self._trigger(),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
            "actions": [action],
            **extra,
        }
        return self._interactive(payload)

    def _message_for(
        self, channel_id: str, message_ts: str | None, action_id: str
    ) -> tuple[dict[str, Any] | None, bool]:
        """(message, is_ephemeral) for a click in ``channel_id``."""
        try:
            messages = self.fake.messages(channel_id)
        except KeyError:
            messages = []
        ephemerals = [e for e in self.fake.ephemerals if e.get("channel") == channel_id]
        if message_ts is not None:
            for message in messages:
                if message.get("ts") == message_ts:
                    return {k: v for k, v in message.items() if v is not None}, False
            for message in ephemerals:
                if message.get("ts") == message_ts:
                    return dict(message), True
            return None, False
        for message in reversed(messages):
            if _find_element(message.get("blocks"), action_id):
                return {k: v for k, v in message.items() if v is not None}, False
        for message in reversed(ephemerals):
            if _find_element(message.get("blocks"), action_id):
                return dict(message), True
        raise AssertionError(
            f"no message in {channel_id} has an element with action_id {action_id!r}"
        )

    def message_shortcut(
        self,
        callback_id: str,
        *,
        message_text: str,
        message_ts: str,
        channel_id: str = DEFAULT_CHANNEL_ID,
        user_id: str = DEFAULT_USER_ID,
        message_user: str | None = None,
    ) -> requests.Response:
        """POST a ``message_action`` (message shortcut) on the message at ``message_ts``."""
        self.last_response_url = self.fake.response_url(
            channel_id=channel_id, message_ts=message_ts, user_id=user_id
        )
        payload: dict[str, Any] = {
            "type": "message_action",
            "token": self.verification_token,
            "action_ts": f"{time.time():.6f}",
            "team": self._team(),
            "user": self._user(user_id),
            "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger(),
            "response_url": self.last_response_url,
            "message_ts": message_ts,
            "message": {
                "type": "message",
                "user": message_user or user_id,
                "ts": message_ts,
                "text": message_text,
            },
        }
        return self._interactive(payload)

    # ---------------------------------------------------------------- events

    def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> requests.Response:
        """POST an Events API ``event_callback`` envelope (JSON) around ``event``.

        ``event_id`` defaults to a fresh ``Ev…`` id (reuse it to simulate a redelivery);
        ``retry_num`` adds ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` as Slack's
        retries do. ``event_ts`` is filled in when the event lacks it.
        """
        inner = dict(event)
        inner.setdefault("event_ts", f"{time.time():.6f}")
        envelope: dict[str, Any] = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": inner,
            "type": "event_callback",
            "event_id": event_id
            or "Ev"
            + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10)),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        self.last_payload = envelope
        return self.raw(json.dumps(envelope), JSON, headers)

    def url_verification(self, challenge: str = "imas-challenge") -> requests.Response:
        """POST the ``url_verification`` handshake Slack sends when the URL is configured."""
        payload = {
            "token": self.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        self.last_payload = payload
        return self.raw(json.dumps(payload), JSON)

    # ---------------------------------------------------------------- raw

    def raw(
        self,
        body: str,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        sign: bool = True,
        timestamp: str | int | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        """POST ``body`` as-is; the building block of every other method.

        ``sign=True`` adds ``X-Slack-Request-Timestamp`` (``timestamp`` or now) and
        ``X-Slack-Signature`` (``signature`` or the real HMAC of ``timestamp`` + ``body``).
        ``sign=False`` sends neither header unless ``timestamp``/``signature`` are given,
        which then go out verbatim. ``headers`` are added last (they win).
        """
        sent: dict[str, str] = {"Content-Type": content_type}
        ts = str(timestamp) if timestamp is not None else None
        if sign:
            ts = ts if ts is not None else str(int(time.time()))
            sig = signature or SignatureVerifier(self.signing_secret).generate_signature(
                timestamp=ts, body=body
            )
            sent["X-Slack-Request-Timestamp"] = ts
            sent["X-Slack-Signature"] = str(sig)
        else:
            if ts is not None:
                sent["X-Slack-Request-Timestamp"] = ts
            if signature is not None:
                sent["X-Slack-Signature"] = signature
        sent.update(headers or {})
        started = time.monotonic()
        try:
            response = requests.post(
                self.app_url,
                data=body.encode("utf-8"),
                headers=sent,
                timeout=(HANG_GUARD_SECONDS, self.request_timeout),
            )
        except requests.Timeout:
            self.last_elapsed = time.monotonic() - started
            raise AssertionError(
                f"bot did not answer within {self.request_timeout:.1f}s "
                "(Slack would show operation_timeout)"
            ) from None
        self.last_elapsed = time.monotonic() - started
        if self.max_seconds is not None and self.last_elapsed > self.max_seconds:
            raise AssertionError(
                f"bot answered HTTP {response.status_code} after {self.last_elapsed:.2f}s > "
                f"{self.max_seconds}s (Slack would show operation_timeout)"
            )
        return response
