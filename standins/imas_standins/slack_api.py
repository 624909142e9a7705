"""A stateful fake of the Slack Web API, served over a real localhost socket.

``FakeSlack`` is what the test suite and ``imas demo`` point the bot's
``slack_sdk.WebClient(base_url=fake.url)`` at. It keeps a small workspace in memory
(users, channels, messages, pins, bookmarks, views), answers with the response shapes of
the real API (java-slack-sdk ``json-logs/samples/api``) and with Slack's own error codes
(``slack-api-specs`` ``web_openapi_v2``, Slack method docs).

Contracts (what a caller may rely on):

* Transport: ``http://127.0.0.1:<port>/api/<method>``; JSON body, form-urlencoded POST and
  GET query string are all accepted and merged into one ``args`` dict (query first, then
  the body). Unknown extra arguments are ignored, as Slack does.
* Auth: ``Authorization: Bearer <token>`` or a ``token`` argument. No token gives
  ``not_authed``, a token not in :attr:`FakeSlack.valid_tokens` gives ``invalid_auth``.
* Business errors are HTTP 200 with ``{"ok": false, "error": code}``; an unknown method is
  HTTP 404 with ``unknown_method``; injected faults (:meth:`FakeSlack.inject`) can return
  429 + ``Retry-After``, any HTTP status, or drop the response after the state changed.
* Every API request is recorded as a :class:`Call` (also refused and injected ones),
  in arrival order.
* All state is guarded by one lock; the server runs each request in its own daemon thread.
* Private channels the bot is not a member of are invisible to it (``channel_not_found``),
  as on Slack.
* ``response_url`` hooks (:meth:`FakeSlack.response_url`) accept POSTed JSON, record it in
  :attr:`FakeSlack.responses` and apply ``replace_original`` / ``delete_original`` /
  ``response_type: in_channel`` to the workspace when the hook is tied to a channel.
"""

from __future__ import annotations

import base64
import copy
import http.server
import json
import re
import secrets
import string
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

__all__ = ["Call", "FakeChannel", "FakeSlack", "FakeUser"]

_ALNUM = string.ascii_uppercase + string.digits
_NAME_OK = re.compile(r"^[a-z0-9_-]+$")
_NAME_PUNCT_ONLY = re.compile(r"^[-_]+$")
_MAX_NAME = 80
_MAX_TOPIC = 250
_MAX_TEXT = 40_000
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
_PERMALINK_BASE = "https://fake-slack.local"

HANG_GUARD_SECONDS = 60.0
"""How long a waiting helper (``wait_for``, the driver's HTTP calls, the tests'
``wait_until``) waits before declaring the other side dead. A hang guard, not a speed
limit: a loaded machine is slow, never wrong; speed is measured in ``bench/``."""


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One Web API request as the fake received it.

    ``args`` merges the query string and the body (JSON object or form fields); form values
    are strings, JSON values keep their types. ``at`` is ``time.time()`` on arrival.
    """

    method: str
    args: dict[str, Any]
    at: float


@dataclass
class FakeUser:
    """A workspace member."""

    id: str
    name: str
    email: str | None = None
    real_name: str | None = None
    is_bot: bool = False
    bot_id: str | None = None
    deleted: bool = False
    tz: str = "Europe/London"


@dataclass
class FakeChannel:
    """A conversation: public/private channel, DM (``is_im``) or group DM (``is_mpim``).

    ``messages`` holds every message (thread replies included) as dicts with at least the
    keys ``type, ts, user, text, blocks, thread_ts, metadata, edited`` (``None`` when not
    set); a thread parent carries ``thread_ts == ts`` once it has replies.
    """

    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    creator: str = ""
    created: int = field(default_factory=_now)
    topic: str = ""
    purpose: str = ""
    members: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    pins: set[str] = field(default_factory=set)
    bookmarks: list[dict[str, Any]] = field(default_factory=list)
    is_im: bool = False
    is_mpim: bool = False
    is_general: bool = False
    im_user: str | None = None
    previous_names: list[str] = field(default_factory=list)
    topic_last_set: int = 0
    purpose_last_set: int = 0


# --------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------


class _Refusal(Exception):
    """A business error: becomes ``{"ok": false, "error": code, **extra}``."""

    def __init__(self, code: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.extra = extra


@dataclass
class _Injection:
    method: str
    error: str | None
    http_status: int | None
    retry_after: int | None
    remaining: int
    drop_response: bool


@dataclass
class _Outcome:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class _Trigger:
    issued: float
    used: bool = False


@dataclass
class _Hook:
    url: str
    channel_id: str | None
    message_ts: str | None
    user_id: str | None


def _json_outcome(body: dict[str, Any], status: int = 200, **headers: str) -> _Outcome:
    return _Outcome(status=status, body=json.dumps(body).encode(), headers=dict(headers))


def _arg_str(args: dict[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _required(args: dict[str, Any], key: str, code: str) -> str:
    value = _arg_str(args, key)
    if not value:
        raise _Refusal(code)
    return value


def _arg_bool(args: dict[str, Any], key: str) -> bool:
    value = args.get(key)
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).lower() in {"1", "true", "yes"}


def _arg_json(args: dict[str, Any], key: str, code: str = "invalid_arguments") -> Any:
    """A structured argument: JSON bodies carry it as-is, forms/queries as a JSON string."""
    value = args.get(key)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _Refusal(code, errors=[f"invalid JSON in {key}"]) from None
    return value


def _arg_int(args: dict[str, Any], key: str, default: int) -> int:
    value = args.get(key)
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError:
        raise _Refusal("invalid_arguments") from None


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"next:{offset}".encode()).decode()


def _paginate(
    items: list[Any], args: dict[str, Any], *, default_limit: int = 100, max_limit: int = 1000
) -> tuple[list[Any], str]:
    """Slice ``items`` by ``limit``/``cursor``; returns (page, next_cursor or "")."""
    limit = _arg_int(args, "limit", default_limit)
    if limit <= 0:
        limit = default_limit
    limit = min(limit, max_limit)
    cursor = _arg_str(args, "cursor") or ""
    start = 0
    if cursor:
        try:
            prefix, _, number = base64.b64decode(cursor).decode().partition(":")
            start = int(number)
        except (ValueError, UnicodeDecodeError):
            raise _Refusal("invalid_cursor") from None
        if prefix != "next" or start < 0:
            raise _Refusal("invalid_cursor")
    end = start + limit
    return items[start:end], (_encode_cursor(end) if end < len(items) else "")


def _elements_of(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements of one block (input element, accessory, actions)."""
    found: list[dict[str, Any]] = []
    for key in ("element", "accessory"):
        item = block.get(key)
        if isinstance(item, dict):
            found.append(item)
    elements = block.get("elements")
    if block.get("type") == "actions" and isinstance(elements, list):
        found.extend(e for e in elements if isinstance(e, dict))
    return found


def _assign_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy ``blocks`` giving every block a ``block_id`` and element an ``action_id``.

    Slack fills in random ids when the app leaves them out; views and messages read back
    from the API therefore always carry them.
    """
    result = copy.deepcopy(blocks)
    for block in result:
        block.setdefault("block_id", _rand(5, string.ascii_letters + string.digits))
        for element in _elements_of(block):
            if element.get("type") not in {"image", None}:
                element.setdefault("action_id", _rand(5, string.ascii_letters + string.digits))
    return result


def _check_blocks(raw: Any, *, limit: int, pointer: str = "/blocks") -> list[dict[str, Any]]:
    """Validate Block Kit with slack_sdk.models; raises ``_Refusal("invalid_blocks")``.

    Decodes a JSON string first (form encoding). Enforces the per-surface block count,
    rejects unknown block types (``Block.parse`` returns None for them) and runs every
    model's ``to_dict()`` so nested length limits are checked.
    """
    if raw is None:
        return []
    blocks = raw
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            raise _invalid_blocks(f"[ERROR] invalid JSON [json-pointer:{pointer}]") from None
    if not isinstance(blocks, list):
        raise _invalid_blocks(f"[ERROR] must be an array [json-pointer:{pointer}]")
    if len(blocks) > limit:
        raise _invalid_blocks(
            f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]"
        )
    for index, block in enumerate(blocks):
        where = f"[json-pointer:{pointer}/{index}]"
        if not isinstance(block, dict):
            raise _invalid_blocks(f"[ERROR] must be an object {where}")
        try:
            parsed = Block.parse(block)
        except Exception as exc:  # slack_sdk raises several exception types
            raise _invalid_blocks(f"[ERROR] {exc} {where}") from None
        if parsed is None:
            raise _invalid_blocks(f"[ERROR] unsupported type: {block.get('type')!r} {where}")
        try:
            parsed.to_dict()
        except Exception as exc:  # SlackObjectFormationError, AttributeError, ...
            raise _invalid_blocks(f"[ERROR] {exc} {where}") from None
    return blocks


def _invalid_blocks(message: str) -> _Refusal:
    return _Refusal("invalid_blocks", errors=[message], response_metadata={"messages": [message]})


def _check_view(raw: Any) -> dict[str, Any]:
    """Validate a view payload (``View(**view).to_dict()`` plus the block checks)."""
    view = raw
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except ValueError:
            raise _Refusal(
                "invalid_arguments", response_metadata={"messages": ["invalid view JSON"]}
            ) from None
    if not isinstance(view, dict):
        raise _Refusal(
            "invalid_arguments",
            response_metadata={"messages": ["[ERROR] missing required field: view"]},
        )
    if view.get("type") not in {"modal", "home"}:
        raise _Refusal(
            "invalid_arguments",
            response_metadata={
                "messages": ["[ERROR] type must be either modal or home [json-pointer:/view/type]"]
            },
        )
    blocks = _check_blocks(view.get("blocks"), limit=_MAX_VIEW_BLOCKS, pointer="/view/blocks")
    try:
        View(**view).to_dict()
    except Exception as exc:
        raise _invalid_blocks(f"[ERROR] {exc} [json-pointer:/view]") from None
    checked = dict(view)
    checked["blocks"] = blocks
    return checked


def _public_message(message: dict[str, Any], *, include_metadata: bool = True) -> dict[str, Any]:
    out = {
        k: copy.deepcopy(v) for k, v in message.items() if v is not None and not k.startswith("_")
    }
    if not include_metadata:
        out.pop("metadata", None)
    return out


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # bursts of 50+ concurrent calls (benches, load tests)

    def __init__(self, address: tuple[str, int], fake: FakeSlack) -> None:
        super().__init__(address, _RequestHandler)
        self.fake = fake


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSlack/1.0"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _handle(self) -> None:
        fake = self.server.fake
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        content_type = self.headers.get("Content-Type", "") or ""
        if parts.path.startswith("/api/"):
            outcome = fake._serve_api(
                parts.path[len("/api/") :],
                parts.query,
                raw,
                content_type,
                self.headers.get("Authorization"),
            )
        elif parts.path.startswith("/hooks/"):
            outcome = fake._serve_hook(parts.path, raw)
        else:
            outcome = _Outcome(404, b"not found", "text/plain; charset=utf-8")
        if outcome.drop:
            self.close_connection = True
            return
        self.send_response(outcome.status)
        self.send_header("Content-Type", outcome.content_type)
        self.send_header("Content-Length", str(len(outcome.body)))
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(outcome.body)


# --------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------

_ApiHandler = Callable[[dict[str, Any]], dict[str, Any]]


class FakeSlack:
    """A stateful Slack Web API on ``127.0.0.1`` for tests and ``imas demo``.

    Usage::

        with FakeSlack() as fake:
            client = WebClient(token=fake.bot_token, base_url=fake.url)
            fake.add_user("U0BOB0001", "bob", email="bob@example.com")
            client.conversations_create(name="inc-42")

    A fresh fake already holds the bot user (:attr:`bot_user_id`), Alice
    (``U0ALICE01``, ``alice@example.com``) and ``#general`` (``C0GENERAL1``, Alice and the
    bot are members) so that :class:`imas_standins.slack_driver.SlackDriver`'s defaults
    resolve; pass ``seed=False`` for an empty workspace (bot user only).

    ``trigger_ttl`` is how long a ``trigger_id`` from :meth:`new_trigger_id` stays valid
    (Slack: 3 s); tests shorten it instead of sleeping.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = "xoxb-imas-test",  # noqa: S107 - a fake-only token
        team_id: str = "T0IMAS001",
        latency: float = 0.0,
        trigger_ttl: float = 3.0,
        app_id: str = "A0IMAS001",
        seed: bool = True,
    ) -> None:
        self.host = host
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_name = "IMAS Test"
        self.team_domain = "imas-test"
        self.app_id = app_id
        self.bot_user_id = "U0IMASBOT"
        self.bot_id = "B0IMASBOT"
        self.trigger_ttl = trigger_ttl
        self.valid_tokens: set[str] = {bot_token}
        self.users: dict[str, FakeUser] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._port = port
        self._latency = latency
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._responses: list[dict[str, Any]] = []
        self._views_opened: list[dict[str, Any]] = []
        self._last_view_id: str | None = None
        self._injections: list[_Injection] = []
        self._triggers: dict[str, _Trigger] = {}
        self._hooks: dict[str, _Hook] = {}
        self._last_ts_us = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, _ApiHandler] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "conversations.create": self._conversations_create,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.invite": self._conversations_invite,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.join": self._conversations_join,
            "conversations.archive": self._conversations_archive,
            "conversations.unarchive": self._conversations_unarchive,
            "conversations.rename": self._conversations_rename,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.open": self._conversations_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.list": self._users_list,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "pins.list": self._pins_list,
            "bookmarks.add": self._bookmarks_add,
            "bookmarks.list": self._bookmarks_list,
            "bookmarks.edit": self._bookmarks_edit,
            "bookmarks.remove": self._bookmarks_remove,
            "reactions.add": self._reactions_add,
        }
        self.users[self.bot_user_id] = FakeUser(
            self.bot_user_id, "imas", real_name="IMAS", is_bot=True, bot_id=self.bot_id
        )
        if seed:
            self.add_user(
                "U0ALICE01", "alice", email="alice@example.com", real_name="Alice Example"
            )
            self.add_channel(
                "general", channel_id="C0GENERAL1", members=("U0ALICE01",), is_general=True
            )

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Bind the socket and serve in a daemon thread. Idempotent; returns ``self``."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._port), self)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"FakeSlack:{self._port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (only meaningful after :meth:`start`)."""
        self._require_started()
        return self._port

    @property
    def base(self) -> str:
        """``http://<host>:<port>`` without a path."""
        self._require_started()
        return f"http://{self.host}:{self._port}"

    @property
    def url(self) -> str:
        """The Web API base URL, ``http://127.0.0.1:<port>/api/`` (trailing slash)."""
        return f"{self.base}/api/"

    def _require_started(self) -> None:
        if self._server is None:
            raise RuntimeError(
                "FakeSlack is not started; call start() or use it as a context manager"
            )

    def set_latency(self, seconds: float) -> None:
        """Sleep ``seconds`` in every later Web API call (a slow Slack)."""
        self._latency = max(0.0, seconds)

    # ---------------------------------------------------------------- workspace setup

    def add_user(
        self,
        user_id: str,
        name: str,
        email: str | None = None,
        real_name: str | None = None,
        is_bot: bool = False,
    ) -> FakeUser:
        """Add (or replace) a workspace member and return it."""
        user = FakeUser(user_id, name, email=email, real_name=real_name or name, is_bot=is_bot)
        if is_bot:
            user.bot_id = "B" + user_id[1:]
        with self._lock:
            self.users[user_id] = user
        return user

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        is_private: bool = False,
        members: Iterable[str] = (),
        bot_member: bool = True,
        creator: str | None = None,
        is_general: bool = False,
    ) -> str:
        """Create a channel directly (no API rules) and return its id.

        Raises ``ValueError`` when the name or id is already used.
        """
        with self._lock:
            if self._find_by_name(name) is not None:
                raise ValueError(f"channel name already used: {name}")
            cid = channel_id or self._new_channel_id("C")
            if cid in self.channels:
                raise ValueError(f"channel id already used: {cid}")
            channel = FakeChannel(
                id=cid,
                name=name,
                is_private=is_private,
                creator=creator or self.bot_user_id,
                members=set(members),
                is_general=is_general,
            )
            if bot_member:
                channel.members.add(self.bot_user_id)
            self.channels[cid] = channel
            return cid

    def add_member(self, channel_id: str, user_id: str) -> None:
        """Put ``user_id`` (the bot included) into a channel."""
        with self._lock:
            self.channels[channel_id].members.add(user_id)

    def remove_member(self, channel_id: str, user_id: str) -> None:
        """Take ``user_id`` (the bot included) out of a channel."""
        with self._lock:
            self.channels[channel_id].members.discard(user_id)

    def post_as_user(
        self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None
    ) -> str:
        """Add a human's message to a channel without going through the API; returns ts.

        Fires no event: use ``SlackDriver.event`` to tell the bot about it.
        """
        with self._lock:
            channel = self.channels[channel_id]
            message = self._new_message(user=user_id, text=text, blocks=None, thread_ts=None)
            message.pop("bot_id")
            message.pop("app_id")
            self._append_message(channel, message, thread_ts)
            return str(message["ts"])

    def new_trigger_id(self) -> str:
        """Issue a ``trigger_id``: single use, valid for :attr:`trigger_ttl` seconds."""
        trigger = f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = _Trigger(issued=time.monotonic())
        return trigger

    def response_url(
        self,
        *,
        channel_id: str | None = None,
        message_ts: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """A fresh ``response_url`` (``http://127.0.0.1:<port>/hooks/<id>``).

        POSTs to it are recorded in :attr:`responses` and answered ``ok``. When tied to a
        channel (and message), ``response_type: in_channel`` posts to the channel,
        ``replace_original`` / ``delete_original`` edit/delete ``message_ts``, and other
        bodies become an ephemeral for ``user_id`` (recorded in :attr:`ephemerals`).
        """
        hook_id = f"{self.team_id}/{_rand(11, string.digits)}/{secrets.token_hex(12)}"
        url = f"{self.base}/hooks/{hook_id}"
        with self._lock:
            self._hooks[f"/hooks/{hook_id}"] = _Hook(url, channel_id, message_ts, user_id)
        return url

    # ---------------------------------------------------------------- fault injection

    def inject(
        self,
        method: str,
        *,
        error: str | None = None,
        http_status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
        drop_response: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"``: any method) misbehave.

        * ``error="ratelimited"`` (or ``http_status=429``): HTTP 429, ``Retry-After``
          (``retry_after`` seconds, default 1), body ``{"ok": false, "error": "ratelimited"}``;
          the call is not performed.
        * ``http_status=N``: HTTP N with ``{"ok": false, "error": error or "internal_error"}``;
          not performed.
        * ``error=code`` alone: HTTP 200 ``{"ok": false, "error": code}``; not performed.
        * ``drop_response=True``: the call IS performed, then the socket is closed without
          an answer (a lost response).

        Injections queue up and are consumed in the order they were added.
        """
        if error is None and http_status is None and not drop_response:
            raise ValueError("inject() needs error, http_status or drop_response")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._injections.append(
                _Injection(method, error, http_status, retry_after, times, drop_response)
            )

    def _take_injection(self, method: str) -> _Injection | None:
        with self._lock:
            for injection in self._injections:
                if injection.method in (method, "*"):
                    injection.remaining -= 1
                    if injection.remaining <= 0:
                        self._injections.remove(injection)
                    return injection
        return None

    # ---------------------------------------------------------------- observation

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every Web API call received so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        """Forget the recorded calls (state is kept)."""
        with self._lock:
            self._calls.clear()

    def count(self, method: str) -> int:
        """How many calls of ``method`` arrived so far."""
        with self._lock:
            return sum(1 for call in self._calls if call.method == method)

    def wait_for(
        self,
        method: str,
        timeout: float = HANG_GUARD_SECONDS,
        predicate: Callable[[Call], bool] | None = None,
        **match: Any,
    ) -> Call:
        """Poll until a call of ``method`` matches; return the earliest such call.

        ``match`` compares top-level args for equality; ``predicate`` gets the ``Call``.
        Raises ``AssertionError`` listing the calls seen when ``timeout`` runs out.
        """
        deadline = time.monotonic() + timeout
        while True:
            for call in self.calls:
                if call.method != method:
                    continue
                if any(call.args.get(key) != value for key, value in match.items()):
                    continue
                if predicate is not None and not predicate(call):
                    continue
                return call
            if time.monotonic() >= deadline:
                seen = "\n  ".join(f"{c.method} {c.args!r}" for c in self.calls) or "(none)"
                raise AssertionError(
                    f"no {method} call matching {match or ''}{' + predicate' if predicate else ''}"
                    f" within {timeout}s; calls seen:\n  {seen}"
                )
            time.sleep(0.01)

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Snapshot of POSTs to response URLs: dicts with ``url``, ``body``, ``at``."""
        with self._lock:
            return copy.deepcopy(self._responses)

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        """Snapshot of ephemeral messages (chat.postEphemeral and ephemeral responses).

        Dicts with ``channel, user, ts, text, blocks, thread_ts``.
        """
        with self._lock:
            return copy.deepcopy(self._ephemerals)

    @property
    def views_opened(self) -> list[dict[str, Any]]:
        """Snapshot of every view opened by ``views.open`` / ``views.push``, as returned."""
        with self._lock:
            return copy.deepcopy(self._views_opened)

    def last_view(self) -> dict[str, Any]:
        """The current state of the view last opened, pushed or updated.

        Raises ``AssertionError`` when no view was opened yet.
        """
        with self._lock:
            if self._last_view_id is None:
                raise AssertionError("no view has been opened")
            return copy.deepcopy(self.views[self._last_view_id])

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Snapshot of a channel's messages (oldest first, thread replies included)."""
        with self._lock:
            return copy.deepcopy(self.channels[channel_id].messages)

    def channel(self, channel_id: str) -> FakeChannel:
        """Snapshot of a channel by id (``KeyError`` when unknown)."""
        with self._lock:
            return copy.deepcopy(self.channels[channel_id])

    def channel_by_name(self, name: str) -> FakeChannel | None:
        """Snapshot of a channel by name (archived ones included), or ``None``."""
        with self._lock:
            found = self._find_by_name(name)
            return copy.deepcopy(found) if found is not None else None

    def dm_channel(self, user_id: str) -> str | None:
        """The id of the bot's DM with ``user_id``, if one was opened."""
        with self._lock:
            for channel in self.channels.values():
                if channel.is_im and channel.im_user == user_id:
                    return channel.id
        return None

    # ---------------------------------------------------------------- request handling

    def _serve_api(
        self, method: str, query: str, raw: bytes, content_type: str, authorization: str | None
    ) -> _Outcome:
        args: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        body_error: str | None = None
        if raw:
            text = raw.decode("utf-8", errors="replace")
            if "application/json" in content_type.lower():
                try:
                    payload = json.loads(text)
                except ValueError:
                    body_error = "invalid_json"
                else:
                    if isinstance(payload, dict):
                        args.update(payload)
                    else:
                        body_error = "json_not_object"
            else:
                args.update(urllib.parse.parse_qsl(text, keep_blank_values=True))
        with self._lock:
            self._calls.append(Call(method, dict(args), time.time()))
        if self._latency > 0:
            time.sleep(self._latency)

        injection = self._take_injection(method)
        if injection is not None and not injection.drop_response:
            return self._injected(injection)
        if method not in self._methods:
            return _json_outcome({"ok": False, "error": "unknown_method"}, status=404)
        if body_error is not None:
            return _json_outcome({"ok": False, "error": body_error})

        token: str | None = None
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[len("bearer ") :].strip()
        token = token or _arg_str(args, "token")
        if not token:
            outcome = _json_outcome({"ok": False, "error": "not_authed"})
        elif token not in self.valid_tokens:
            outcome = _json_outcome({"ok": False, "error": "invalid_auth"})
        else:
            try:
                with self._lock:
                    result = self._methods[method](args)
                outcome = _json_outcome({"ok": True, **result})
            except _Refusal as refusal:
                outcome = _json_outcome(
                    {"ok": False, "error": refusal.code, **refusal.extra}, status=refusal.status
                )
        if injection is not None:  # drop_response: state changed, answer lost
            return _Outcome(status=0, body=b"", drop=True)
        return outcome

    @staticmethod
    def _injected(injection: _Injection) -> _Outcome:
        if injection.error == "ratelimited" or injection.http_status == 429:
            retry_after = injection.retry_after if injection.retry_after is not None else 1
            return _json_outcome(
                {"ok": False, "error": "ratelimited"},
                status=injection.http_status or 429,
                **{"Retry-After": str(retry_after)},
            )
        if injection.http_status is not None:
            return _json_outcome(
                {"ok": False, "error": injection.error or "internal_error"},
                status=injection.http_status,
            )
        return _json_outcome({"ok": False, "error": str(injection.error)})

    def _serve_hook(self, path: str, raw: bytes) -> _Outcome:
        with self._lock:
            hook = self._hooks.get(path)
            if hook is None:
                return _Outcome(404, b"no_service", "text/plain; charset=utf-8")
            text = raw.decode("utf-8", errors="replace")
            try:
                body: Any = json.loads(text) if text else {}
            except ValueError:
                body = text
            self._responses.append({"url": hook.url, "body": body, "at": time.time()})
            if isinstance(body, dict):
                try:
                    self._apply_response(hook, body)
                except _Refusal as refusal:
                    return _Outcome(400, refusal.code.encode(), "text/plain; charset=utf-8")
        return _Outcome(200, b"ok", "text/plain; charset=utf-8")

    def _apply_response(self, hook: _Hook, body: dict[str, Any]) -> None:
        blocks = _check_blocks(body.get("blocks"), limit=_MAX_MESSAGE_BLOCKS)
        channel = self.channels.get(hook.channel_id or "")
        if channel is None:
            return
        original = self._find_message(channel, hook.message_ts) if hook.message_ts else None
        if _arg_bool(body, "delete_original"):
            if original is not None:
                channel.messages.remove(original)
            return
        if _arg_bool(body, "replace_original") and original is not None:
            original["text"] = body.get("text", "")
            original["blocks"] = _assign_ids(blocks)
            original["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
            return
        if body.get("response_type") == "in_channel":
            message = self._new_message(
                user=self.bot_user_id, text=body.get("text", ""), blocks=blocks, thread_ts=None
            )
            self._append_message(channel, message, _arg_str(body, "thread_ts"))
            return
        self._ephemerals.append(
            {
                "channel": channel.id,
                "user": hook.user_id,
                "ts": self._new_ts(),
                "text": body.get("text", ""),
                "blocks": blocks,
                "thread_ts": _arg_str(body, "thread_ts"),
            }
        )

    # ---------------------------------------------------------------- state helpers

    def _new_channel_id(self, prefix: str) -> str:
        while True:
            cid = prefix + _rand(10)
            if cid not in self.channels:
                return cid

    def _new_ts(self) -> str:
        now_us = int(time.time() * 1_000_000)
        if now_us <= self._last_ts_us:
            now_us = self._last_ts_us + 1
        self._last_ts_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"

    def _find_by_name(self, name: str) -> FakeChannel | None:
        for channel in self.channels.values():
            if channel.name == name and not channel.is_im and not channel.is_mpim:
                return channel
        return None

    def _visible(self, channel_id: str | None) -> FakeChannel:
        """The channel as the bot sees it; private ones it is not in do not exist."""
        channel = self.channels.get(channel_id or "")
        if channel is None or (channel.is_private and self.bot_user_id not in channel.members):
            raise _Refusal("channel_not_found")
        return channel

    def _require_member(self, channel: FakeChannel) -> None:
        if self.bot_user_id not in channel.members:
            raise _Refusal("not_in_channel")

    def _require_not_archived(self, channel: FakeChannel) -> None:
        if channel.is_archived:
            raise _Refusal("is_archived")

    def _check_name(self, name: str | None, *, current: FakeChannel | None = None) -> str:
        if not name:
            raise _Refusal("invalid_name_required")
        if len(name) > _MAX_NAME:
            raise _Refusal("invalid_name_maxlength")
        if not _NAME_OK.match(name):
            raise _Refusal("invalid_name_specials")
        if _NAME_PUNCT_ONLY.match(name):
            raise _Refusal("invalid_name_punctuation")
        existing = self._find_by_name(name)
        if existing is not None and existing is not current:
            raise _Refusal("name_taken")
        return name

    def _channel_json(self, channel: FakeChannel, *, num_members: bool = False) -> dict[str, Any]:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.im_user,
                "is_user_deleted": False,
                "priority": 0,
                "is_open": True,
            }
        out: dict[str, Any] = {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": not channel.is_private and not channel.is_mpim,
            "is_group": channel.is_private and not channel.is_mpim,
            "is_im": False,
            "is_mpim": channel.is_mpim,
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": channel.is_archived,
            "is_general": channel.is_general,
            "unlinked": 0,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "creator": channel.creator,
            "is_member": self.bot_user_id in channel.members,
            "topic": {
                "value": channel.topic,
                "creator": channel.creator if channel.topic else "",
                "last_set": channel.topic_last_set,
            },
            "purpose": {
                "value": channel.purpose,
                "creator": channel.creator if channel.purpose else "",
                "last_set": channel.purpose_last_set,
            },
            "previous_names": list(channel.previous_names),
        }
        if num_members:
            out["num_members"] = len(channel.members)
        return out

    def _user_json(self, user: FakeUser) -> dict[str, Any]:
        profile: dict[str, Any] = {
            "real_name": user.real_name or user.name,
            "real_name_normalized": user.real_name or user.name,
            "display_name": user.name,
            "display_name_normalized": user.name,
            "team": self.team_id,
            "image_48": f"https://fake-slack.local/avatars/{user.id}_48.png",
        }
        if user.email:
            profile["email"] = user.email
        if user.bot_id:
            profile["bot_id"] = user.bot_id
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name or user.name,
            "tz": user.tz,
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": _now(),
            "profile": profile,
        }

    def _new_message(
        self,
        *,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "type": "message",
            "ts": self._new_ts(),
            "user": user,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": text,
            "blocks": _assign_ids(blocks or []),
            "thread_ts": thread_ts,
            "metadata": metadata,
            "edited": None,
        }

    def _find_message(self, channel: FakeChannel, ts: str | None) -> dict[str, Any] | None:
        for message in channel.messages:
            if message["ts"] == ts:
                return message
        return None

    def _append_message(
        self, channel: FakeChannel, message: dict[str, Any], thread_ts: str | None
    ) -> None:
        """Append, threading under the root of ``thread_ts`` when that message exists."""
        if thread_ts:
            parent = self._find_message(channel, thread_ts)
            if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
                parent = self._find_message(channel, parent["thread_ts"]) or parent
            root_ts = parent["ts"] if parent is not None else thread_ts
            message["thread_ts"] = root_ts
            if parent is not None:
                parent["thread_ts"] = root_ts
                parent["reply_count"] = int(parent.get("reply_count") or 0) + 1
                users = list(parent.get("reply_users") or [])
                if message["user"] not in users:
                    users.append(message["user"])
                parent["reply_users"] = users
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = message["ts"]
        channel.messages.append(message)

    def _resolve_post_target(self, channel_arg: str | None) -> FakeChannel:
        """chat.postMessage's ``channel``: an id, a user id (their DM) or a #name."""
        if not channel_arg:
            raise _Refusal("channel_not_found")
        if channel_arg in self.channels:
            return self._visible(channel_arg)
        if channel_arg.startswith(("U", "W")) and channel_arg in self.users:
            return self._open_im(channel_arg)
        by_name = self._find_by_name(channel_arg.lstrip("#"))
        if by_name is not None:
            return self._visible(by_name.id)
        raise _Refusal("channel_not_found")

    def _open_im(self, user_id: str) -> FakeChannel:
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user_id:
                return channel
        cid = self._new_channel_id("D")
        channel = FakeChannel(
            id=cid,
            name=cid,
            is_private=True,
            creator=self.bot_user_id,
            members={user_id, self.bot_user_id},
            is_im=True,
            im_user=user_id,
        )
        self.channels[cid] = channel
        return channel

    # ---------------------------------------------------------------- auth / api

    def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"args": {k: v for k, v in args.items() if k != "token"}}

    def _auth_test(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    # ---------------------------------------------------------------- conversations

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = self._check_name(_arg_str(args, "name"))
        cid = self._new_channel_id("C")
        channel = FakeChannel(
            id=cid,
            name=name,
            is_private=_arg_bool(args, "is_private"),
            creator=self.bot_user_id,
            members={self.bot_user_id},
        )
        self.channels[cid] = channel
        return {"channel": self._channel_json(channel)}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        return {
            "channel": self._channel_json(
                channel, num_members=_arg_bool(args, "include_num_members")
            )
        }

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = set(_csv(_arg_str(args, "types"))) or {"public_channel"}
        exclude_archived = _arg_bool(args, "exclude_archived")
        selected: list[dict[str, Any]] = []
        for channel in self.channels.values():
            if channel.is_im:
                kind = "im"
            elif channel.is_mpim:
                kind = "mpim"
            else:
                kind = "private_channel" if channel.is_private else "public_channel"
            if kind not in types:
                continue
            if kind != "public_channel" and self.bot_user_id not in channel.members:
                continue
            if exclude_archived and channel.is_archived:
                continue
            selected.append(self._channel_json(channel))
        page, next_cursor = _paginate(selected, args)
        return {"channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        users = _csv(_arg_str(args, "users"))
        if not users:
            raise _Refusal("no_user")
        if channel.is_im:
            raise _Refusal("method_not_supported_for_channel_type")
        self._require_not_archived(channel)
        self._require_member(channel)
        for user_id in users:
            if user_id == self.bot_user_id:
                raise _Refusal("cant_invite_self")
            if user_id not in self.users:
                raise _Refusal("user_not_found")
        if all(user_id in channel.members for user_id in users):
            raise _Refusal("already_in_channel")
        channel.members.update(users)
        return {"channel": self._channel_json(channel)}

    def _set_text_field(self, args: dict[str, Any], key: str) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        value = _arg_str(args, key) or ""
        self._require_not_archived(channel)
        self._require_member(channel)
        if len(value) > _MAX_TOPIC:
            raise _Refusal("too_long")
        if key == "topic":
            channel.topic, channel.topic_last_set = value, _now()
        else:
            channel.purpose, channel.purpose_last_set = value, _now()
        return {"channel": self._channel_json(channel), key: value}

    def _conversations_set_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text_field(args, "topic")

    def _conversations_set_purpose(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text_field(args, "purpose")

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        if channel.is_im or channel.is_mpim or channel.is_private:
            raise _Refusal("method_not_supported_for_channel_type")
        self._require_not_archived(channel)
        result: dict[str, Any] = {}
        if self.bot_user_id in channel.members:
            result = {
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        channel.members.add(self.bot_user_id)
        return {"channel": self._channel_json(channel), **result}

    def _conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        if channel.is_im or channel.is_mpim:
            raise _Refusal("method_not_supported_for_channel_type")
        if channel.is_general:
            raise _Refusal("cant_archive_general")
        if channel.is_archived:
            raise _Refusal("already_archived")
        channel.is_archived = True
        return {}

    def _conversations_unarchive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        if not channel.is_archived:
            raise _Refusal("not_archived")
        channel.is_archived = False
        return {}

    def _conversations_rename(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        if channel.is_im or channel.is_mpim:
            raise _Refusal("method_not_supported_for_channel_type")
        self._require_member(channel)
        name = self._check_name(_arg_str(args, "name"), current=channel)
        if name != channel.name:
            channel.previous_names.append(channel.name)
            channel.name = name
        return {"channel": self._channel_json(channel)}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        page, next_cursor = _paginate(sorted(channel.members), args)
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        include_metadata = _arg_bool(args, "include_all_metadata")
        latest = _arg_str(args, "latest")
        oldest = _arg_str(args, "oldest")
        inclusive = _arg_bool(args, "inclusive")

        def in_range(ts: str) -> bool:
            value = float(ts)
            if latest and (value > float(latest) or (value == float(latest) and not inclusive)):
                return False
            return not (
                oldest and (value < float(oldest) or (value == float(oldest) and not inclusive))
            )

        top_level = [
            m
            for m in reversed(channel.messages)
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("reply_broadcast"))
            and in_range(m["ts"])
        ]
        page, next_cursor = _paginate(top_level, args)
        return {
            "messages": [_public_message(m, include_metadata=include_metadata) for m in page],
            "has_more": bool(next_cursor),
            "pin_count": len(channel.pins),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        ts = _arg_str(args, "ts")
        message = self._find_message(channel, ts)
        if message is None:
            raise _Refusal("thread_not_found")
        root_ts = message.get("thread_ts") or message["ts"]
        thread = [
            m for m in channel.messages if m["ts"] == root_ts or m.get("thread_ts") == root_ts
        ]
        page, next_cursor = _paginate(thread, args)
        include_metadata = _arg_bool(args, "include_all_metadata")
        return {
            "messages": [_public_message(m, include_metadata=include_metadata) for m in page],
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_arg = _arg_str(args, "channel")
        if channel_arg:
            channel = self._visible(channel_arg)
            return {"no_op": True, "already_open": True, "channel": {"id": channel.id}}
        users = [u for u in _csv(_arg_str(args, "users")) if u != self.bot_user_id]
        if not users:
            raise _Refusal("users_list_not_supplied")
        if len(users) > 8:
            raise _Refusal("too_many_users")
        for user_id in users:
            if user_id not in self.users:
                raise _Refusal("user_not_found")
        if len(users) == 1:
            existed = any(c.is_im and c.im_user == users[0] for c in self.channels.values())
            channel = self._open_im(users[0])
        else:
            members = {*users, self.bot_user_id}
            found = next(
                (c for c in self.channels.values() if c.is_mpim and c.members == members), None
            )
            existed = found is not None
            if found is None:
                names = sorted(self.users[u].name for u in members)
                cid = self._new_channel_id("G")
                found = FakeChannel(
                    id=cid,
                    name="mpdm-" + "--".join(names) + "-1",
                    is_private=True,
                    is_mpim=True,
                    creator=self.bot_user_id,
                    members=members,
                )
                self.channels[cid] = found
            channel = found
        result: dict[str, Any] = {"channel": {"id": channel.id}}
        if existed:
            result.update(no_op=True, already_open=True)
        return result

    # ---------------------------------------------------------------- chat

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_post_target(_arg_str(args, "channel"))
        self._require_not_archived(channel)
        self._require_member(channel)
        text = _arg_str(args, "text")
        blocks = _check_blocks(args.get("blocks"), limit=_MAX_MESSAGE_BLOCKS)
        if not text and not blocks and not args.get("attachments"):
            raise _Refusal("no_text")
        if text and len(text) > _MAX_TEXT:
            raise _Refusal("msg_too_long")
        metadata = _arg_json(args, "metadata")
        message = self._new_message(
            user=self.bot_user_id,
            text=text or "",
            blocks=blocks,
            thread_ts=None,
            metadata=metadata if isinstance(metadata, dict) else None,
        )
        attachments = _arg_json(args, "attachments")
        if attachments:
            message["attachments"] = attachments
        thread_ts = _arg_str(args, "thread_ts")
        if thread_ts and _arg_bool(args, "reply_broadcast"):
            message["reply_broadcast"] = True
        self._append_message(channel, message, thread_ts)
        return {"channel": channel.id, "ts": message["ts"], "message": _public_message(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        ts = _required(args, "ts", "message_not_found")
        message = self._find_message(channel, ts)
        if message is None:
            raise _Refusal("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise _Refusal("cant_update_message")
        text = _arg_str(args, "text")
        has_blocks = "blocks" in args
        blocks = _check_blocks(args.get("blocks"), limit=_MAX_MESSAGE_BLOCKS)
        metadata = _arg_json(args, "metadata")
        if text is None and not has_blocks and metadata is None and "attachments" not in args:
            raise _Refusal("no_text")
        if text and len(text) > _MAX_TEXT:
            raise _Refusal("msg_too_long")
        if text is not None:
            message["text"] = text
        if has_blocks:
            message["blocks"] = _assign_ids(blocks)
        if isinstance(metadata, dict):
            message["metadata"] = metadata
        message["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        return {
            "channel": channel.id,
            "ts": ts,
            "text": message["text"],
            "message": _public_message(message),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_post_target(_arg_str(args, "channel"))
        user_id = _required(args, "user", "user_not_in_channel")
        self._require_not_archived(channel)
        if user_id not in self.users or user_id not in channel.members:
            raise _Refusal("user_not_in_channel")
        text = _arg_str(args, "text")
        blocks = _check_blocks(args.get("blocks"), limit=_MAX_MESSAGE_BLOCKS)
        if not text and not blocks and not args.get("attachments"):
            raise _Refusal("no_text")
        ts = self._new_ts()
        self._ephemerals.append(
            {
                "channel": channel.id,
                "user": user_id,
                "ts": ts,
                "text": text or "",
                "blocks": blocks,
                "thread_ts": _arg_str(args, "thread_ts"),
            }
        )
        return {"message_ts": ts}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        ts = _arg_str(args, "ts")
        message = self._find_message(channel, ts)
        if message is None:
            raise _Refusal("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise _Refusal("cant_delete_message")
        channel.messages.remove(message)
        channel.pins.discard(str(ts))
        return {"channel": channel.id, "ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        ts = _arg_str(args, "message_ts")
        message = self._find_message(channel, ts)
        if message is None or ts is None:
            raise _Refusal("message_not_found")
        permalink = f"{_PERMALINK_BASE}/archives/{channel.id}/p{ts.replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != ts:
            permalink += f"?thread_ts={thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": permalink}

    # ---------------------------------------------------------------- users

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(_arg_str(args, "user") or "")
        if user is None:
            raise _Refusal("user_not_found")
        return {"user": self._user_json(user)}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = (_arg_str(args, "email") or "").lower()
        for user in self.users.values():
            if email and user.email and user.email.lower() == email:
                return {"user": self._user_json(user)}
        raise _Refusal("users_not_found")

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        members = [self._user_json(u) for u in self.users.values()]
        page, next_cursor = _paginate(members, args, default_limit=1000)
        return {
            "members": page,
            "cache_ts": _now(),
            "response_metadata": {"next_cursor": next_cursor},
        }

    # ---------------------------------------------------------------- views

    def _consume_trigger(self, trigger_id: str | None) -> None:
        if not trigger_id:
            raise _Refusal(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
            )
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise _Refusal("invalid_trigger_id")
        if trigger.used:
            raise _Refusal("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > self.trigger_ttl:
            raise _Refusal("expired_trigger_id")
        trigger.used = True

    def _store_view(
        self,
        view: dict[str, Any],
        *,
        root_view_id: str | None,
        previous_view_id: str | None,
        view_id: str | None = None,
    ) -> dict[str, Any]:
        vid = view_id or "V" + _rand(10)
        external_id = view.get("external_id") or ""
        if external_id:
            for other in self.views.values():
                if other["external_id"] == external_id and other["id"] != vid:
                    raise _Refusal("duplicate_external_id")
        stored: dict[str, Any] = {
            "id": vid,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": _assign_ids(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata") or "",
            "callback_id": view.get("callback_id") or "",
            "state": {"values": {}},
            "hash": f"{_now()}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous_view_id,
            "root_view_id": root_view_id or vid,
            "app_id": self.app_id,
            "external_id": external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self.views[vid] = stored
        return stored

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _check_view(args.get("view"))
        if view["type"] != "modal":
            raise _Refusal("invalid_arguments")
        self._consume_trigger(_arg_str(args, "trigger_id"))
        stored = self._store_view(view, root_view_id=None, previous_view_id=None)
        self._views_opened.append(copy.deepcopy(stored))
        self._last_view_id = stored["id"]
        return {"view": copy.deepcopy(stored)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _check_view(args.get("view"))
        if view["type"] != "modal":
            raise _Refusal("invalid_arguments")
        self._consume_trigger(_arg_str(args, "trigger_id"))
        previous = self.views.get(self._last_view_id or "")
        stored = self._store_view(
            view,
            root_view_id=previous["root_view_id"] if previous else None,
            previous_view_id=previous["id"] if previous else None,
        )
        self._views_opened.append(copy.deepcopy(stored))
        self._last_view_id = stored["id"]
        return {"view": copy.deepcopy(stored)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = _arg_str(args, "view_id")
        external_id = _arg_str(args, "external_id")
        if not view_id and not external_id:
            raise _Refusal(
                "invalid_arguments",
                response_metadata={
                    "messages": ["[ERROR] either view_id or external_id is required"]
                },
            )
        view = _check_view(args.get("view"))
        current = self.views.get(view_id or "")
        if current is None and external_id:
            current = next(
                (v for v in self.views.values() if v["external_id"] == external_id), None
            )
        if current is None:
            raise _Refusal("not_found")
        expected_hash = _arg_str(args, "hash")
        if expected_hash and expected_hash != current["hash"]:
            raise _Refusal("hash_conflict")
        if not view.get("external_id") and current["external_id"]:
            view["external_id"] = current["external_id"]
        stored = self._store_view(
            view,
            root_view_id=current["root_view_id"],
            previous_view_id=current["previous_view_id"],
            view_id=current["id"],
        )
        if stored["type"] == "modal":
            self._last_view_id = stored["id"]
        return {"view": copy.deepcopy(stored)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = _arg_str(args, "user_id")
        if not user_id or user_id not in self.users:
            raise _Refusal("user_not_found")
        view = _check_view(args.get("view"))
        if view["type"] != "home":
            raise _Refusal("invalid_arguments")
        current = self.home_views.get(user_id)
        expected_hash = _arg_str(args, "hash")
        if current is not None and expected_hash and expected_hash != current["hash"]:
            raise _Refusal("hash_conflict")
        stored = self._store_view(
            view,
            root_view_id=None,
            previous_view_id=None,
            view_id=current["id"] if current is not None else None,
        )
        self.home_views[user_id] = stored
        return {"view": copy.deepcopy(stored)}

    # ---------------------------------------------------------------- pins, reactions

    def _pinned_message(self, args: dict[str, Any]) -> tuple[FakeChannel, str]:
        channel = self._visible(_arg_str(args, "channel"))
        ts = _arg_str(args, "timestamp")
        if not ts:
            raise _Refusal("no_item_specified")
        self._require_member(channel)
        if self._find_message(channel, ts) is None:
            raise _Refusal("message_not_found")
        return channel, ts

    def _pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = self._pinned_message(args)
        self._require_not_archived(channel)
        if ts in channel.pins:
            raise _Refusal("already_pinned")
        channel.pins.add(ts)
        return {}

    def _pins_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = self._pinned_message(args)
        if ts not in channel.pins:
            raise _Refusal("not_pinned")
        channel.pins.discard(ts)
        return {}

    def _pins_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        items = []
        for ts in sorted(channel.pins, reverse=True):
            message = self._find_message(channel, ts)
            if message is None:
                continue
            items.append(
                {
                    "type": "message",
                    "created": int(float(ts)),
                    "created_by": self.bot_user_id,
                    "channel": channel.id,
                    "message": _public_message(message),
                }
            )
        return {"items": items}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel"))
        ts = _arg_str(args, "timestamp")
        if not ts:
            raise _Refusal("no_item_specified")
        name = (_arg_str(args, "name") or "").strip(":")
        if not name or not re.match(r"^[a-z0-9_+'-]+(::skin-tone-[2-6])?$", name):
            raise _Refusal("invalid_name")
        message = self._find_message(channel, ts)
        if message is None:
            raise _Refusal("message_not_found")
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if self.bot_user_id in reaction["users"]:
            raise _Refusal("already_reacted")
        reaction["users"].append(self.bot_user_id)
        reaction["count"] = len(reaction["users"])
        return {}

    # ---------------------------------------------------------------- bookmarks

    def _bookmarks_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel_id"))
        title = _arg_str(args, "title")
        kind = _arg_str(args, "type")
        link = _arg_str(args, "link") or ""
        if not title or not kind:
            raise _Refusal("invalid_arguments")
        if kind != "link":
            raise _Refusal("invalid_bookmark_type")
        if not link.startswith(("http://", "https://")):
            raise _Refusal("invalid_link")
        self._require_not_archived(channel)
        if len(channel.bookmarks) >= 100:
            raise _Refusal("too_many_bookmarks")
        bookmark: dict[str, Any] = {
            "id": "Bk" + _rand(10),
            "channel_id": channel.id,
            "title": title,
            "link": link,
            "emoji": _arg_str(args, "emoji"),
            "icon_url": None,
            "type": "link",
            "entity_id": None,
            "date_created": _now(),
            "date_updated": 0,
            "rank": string.ascii_lowercase[len(channel.bookmarks) % 26],
            "last_updated_by_user_id": self.bot_user_id,
            "last_updated_by_team_id": self.team_id,
            "shortcut_id": None,
            "app_id": None,
        }
        channel.bookmarks.append(bookmark)
        return {"bookmark": copy.deepcopy(bookmark)}

    def _bookmarks_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(_arg_str(args, "channel_id"))
        return {"bookmarks": copy.deepcopy(channel.bookmarks)}

    def _find_bookmark(self, args: dict[str, Any]) -> tuple[FakeChannel, dict[str, Any]]:
        channel = self._visible(_arg_str(args, "channel_id"))
        bookmark_id = _arg_str(args, "bookmark_id")
        for bookmark in channel.bookmarks:
            if bookmark["id"] == bookmark_id:
                return channel, bookmark
        raise _Refusal("not_found")

    def _bookmarks_edit(self, args: dict[str, Any]) -> dict[str, Any]:
        _channel, bookmark = self._find_bookmark(args)
        link = _arg_str(args, "link")
        if link is not None and not link.startswith(("http://", "https://")):
            raise _Refusal("invalid_link")
        for key in ("title", "link", "emoji"):
            value = _arg_str(args, key)
            if value is not None:
                bookmark[key] = value
        bookmark["date_updated"] = _now()
        bookmark["last_updated_by_user_id"] = self.bot_user_id
        return {"bookmark": copy.deepcopy(bookmark)}

    def _bookmarks_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, bookmark = self._find_bookmark(args)
        channel.bookmarks.remove(bookmark)
        return {}
