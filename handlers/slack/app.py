"""The Bolt app (built once at start-up) and the checks IMAS runs before handing a Slack
request to it: signature (non-numeric or stale timestamps are 401, never 500), a strict
parse by Content-Type (415 / 400, never 500) and replay / retry de-duplication in the
database (shared by every process and replica)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import AuthenticationError
from bot.runtime import AckGate, Runtime
from handlers.slack.outage import on_listener_error
from providers.slack_api import GuardedWebClient
from storage.db import is_unavailable
from storage.models import SeenRequest

MAX_SKEW_SECONDS = 300
log = logging.getLogger(__name__)


class BotIdentity:
    """Bolt's authorization without a Slack call on the request path.

    Bolt's default single-workspace authorization calls ``auth.test`` on the first request,
    before the listener can ack: with a slow Slack that first ack is late. Here the token
    is known, and the bot's user id (used to ignore the bot's own events) is fetched once
    in the background at start-up.
    """

    def __init__(self, *, token: str, client: WebClient) -> None:
        self.token = token
        self.client = client
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None

    def warm_up(self) -> None:
        threading.Thread(target=self._fetch, name="slack-identity", daemon=True).start()

    def _fetch(self) -> None:
        try:
            data = self.client.auth_test()
        except (
            Exception
        ):  # Slack down at start: events from the bot itself are still filtered by bot_id
            log.warning("could not read the bot identity (auth.test); run imas doctor")
            return
        self.bot_user_id = data.get("user_id")
        self.bot_id = data.get("bot_id")

    def authorizer(self) -> Callable[..., AuthorizeResult]:
        """The ``authorize`` function for Bolt (which injects arguments by name)."""

        def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id,
                bot_token=self.token,
                bot_user_id=self.bot_user_id,
                bot_id=self.bot_id,
            )

        return authorize


class AckFirstPool(ThreadPoolExecutor):
    """The pool for Slack calls made after an ack (opening modals, ephemeral answers):
    each task first waits on the runtime's ``AckGate`` (see there)."""

    def __init__(self, gate: AckGate, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        def after_acks() -> Any:
            self.gate.wait()
            return fn(*args, **kwargs)

        return super().submit(after_acks)


class _TokenSkippedFilter(logging.Filter):
    """Drops Bolt's start-up warnings that ``SLACK_BOT_TOKEN`` "will be ignored" / "will be
    unused": Bolt says so whenever a client or ``authorize`` is given beside the token it
    reads from the environment, but IMAS's client and authorizer carry that very token, so
    the warnings read as the opposite of what happens (issue 16, item 9)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in (
            warning_token_skipped(),
            warning_client_prioritized_and_token_skipped(),
        )


_TOKEN_SKIPPED_FILTER = _TokenSkippedFilter()


def build_bolt_app(rt: Runtime) -> tuple[App, AckFirstPool]:
    """The Bolt app with every listener registered, and the pool for post-ack Slack calls."""
    from handlers.slack import register

    settings = rt.settings
    assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None
    client = GuardedWebClient(  # every Slack call through the address guard
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=int(settings.http_read_timeout),
        policy=rt.http.policy,
    )
    # Listeners run in the request's own thread and answer when they return: each one
    # acks, then hands any Slack call to ``background``. This avoids Bolt's hop to its
    # listener executor and its 10 ms ack polling, which dominate the ack latency under load.
    identity = BotIdentity(token=settings.slack_bot_token.get_secret_value(), client=client)
    logging.getLogger("slack_bolt.App").addFilter(_TOKEN_SKIPPED_FILTER)  # idempotent
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        authorize=identity.authorizer(),
        process_before_response=True,
    )
    app.use(client.middleware())  # listeners' per-request clients are guarded too
    app.error(on_listener_error)  # database unavailable: a clear answer, not a 500
    identity.warm_up()
    # Opening modals must happen within the 3 s of the trigger id: one thread per modal
    # in a burst of declarations, not a queue.
    background = AckFirstPool(rt.ack_gate, max_workers=100, thread_name_prefix="slack-ui")
    register(app, rt, background)
    return app, background


def verify_signature(
    secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None
) -> None:
    """Raise AuthenticationError unless the request is signed by Slack within 5 minutes."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp or not signature:
        raise AuthenticationError("missing Slack signature headers")
    try:
        ts = int(timestamp)
    except ValueError:
        raise AuthenticationError("invalid Slack request timestamp") from None
    if abs((now or time.time()) - ts) > MAX_SKEW_SECONDS:
        raise AuthenticationError("stale Slack request timestamp")
    verifier = SignatureVerifier(secret)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationError("body is not UTF-8") from None
    if not verifier.is_valid(body=text, timestamp=timestamp, signature=signature):
        raise AuthenticationError("invalid Slack signature")


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class SlackBodyRefused(Exception):
    """A signed request whose body IMAS will not hand to Bolt: 415 for a content type that
    is neither form nor JSON, 400 for a body that does not parse as its type says."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def parse_slack_body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The payload of a (signature-checked) Slack request, parsed strictly by its
    Content-Type: JSON must be an object, a form must not look like JSON and its
    ``payload`` field (interactions) must be a JSON object. Anything else is refused here,
    so Bolt never sees a body it would fail on (a 500) or read differently."""
    kind = media_type(headers)
    if kind not in (FORM, JSON):
        raise SlackBodyRefused(
            415, "Content-Type must be application/x-www-form-urlencoded or JSON"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SlackBodyRefused(400, "body is not UTF-8") from None
    if kind == JSON:
        try:
            payload: Any = json.loads(text)
        except ValueError:
            raise SlackBodyRefused(400, "body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise SlackBodyRefused(400, "body must be a JSON object")
        return payload
    if text.lstrip().startswith("{"):  # Bolt would read it as JSON whatever the header says
        raise SlackBodyRefused(400, "form body expected")
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        try:
            inner: Any = json.loads(form["payload"])
        except ValueError:
            raise SlackBodyRefused(400, "payload is not valid JSON") from None
        if not isinstance(inner, dict):
            raise SlackBodyRefused(400, "payload must be a JSON object")
        return inner
    if "payload" in text:  # Bolt looks for the bare word: keep its reading and ours equal
        raise SlackBodyRefused(400, "malformed form body")
    return form


def dedup_key(headers: dict[str, str], body: bytes, payload: dict[str, Any]) -> str | None:
    """The key that identifies this delivery, whatever its headers say.

    Events API callbacks are keyed by their event id (Slack retries reuse it with a new
    signature). Everything else is keyed by a digest of the signature and the body: a
    captured request re-sent as-is, under any Content-Type, is a replay. ``ssl_check``
    and ``url_verification`` have no effect and are not recorded.
    """
    if payload.get("ssl_check") or payload.get("type") == "url_verification":
        return None
    event_id = payload.get("event_id")
    if isinstance(event_id, str) and event_id:
        return f"slack-event:{event_id}"[:255]
    signature = headers.get("x-slack-signature", "")
    digest = hashlib.sha256(signature.encode("utf-8", "replace") + b"\n" + body).hexdigest()
    return f"slack-sig:{digest}"


def first_time(rt: Runtime, key: str) -> bool:
    """Record ``key`` in ``seen_requests``; False when it was recorded before (a replay or
    a retry), by this process or any other sharing the database. Rows expire after a day
    (``bot.scheduler.cleanup_seen_requests``), well past the 5-minute signature window."""
    try:
        with rt.transaction() as session:
            if session.get(SeenRequest, key) is not None:
                return False
            session.add(SeenRequest(key=key))
    except IntegrityError:
        return False
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        # The database is down: nothing a replay could do can be written either, so the
        # request goes on to the listener, which tells the user (handlers/slack/outage.py).
        log.warning("replay cache unavailable (%s); the request goes on", type(exc).__name__)
    return True
