"""The Bolt app (built once at start-up) and the checks IMAS runs before handing a Slack
request to it: signature (non-numeric or stale timestamps are 401, never 500) and replay
/ retry de-duplication."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import AuthenticationError
from bot.runtime import AckGate, Runtime
from handlers.slack.outage import on_listener_error
from providers.slack_api import GuardedWebClient
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


def dedup_key(headers: dict[str, str], body: bytes) -> str | None:
    """The key that identifies this delivery: the event id for Events API callbacks
    (Slack retries reuse it), the signature for commands and interactions (Slack never
    retries those, so a repeat is a replay)."""
    content_type = headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            payload: Any = json.loads(body)
        except ValueError:
            return None
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        return f"slack-event:{event_id}" if event_id else None
    form = parse_qs(body.decode("utf-8", "replace"))
    if "ssl_check" in form:
        return None
    signature = headers.get("x-slack-signature", "")
    return f"slack-sig:{signature}" if signature else None


class ReplayCache:
    """Signatures seen in the last ``ttl`` seconds, in memory.

    Commands and interactions are checked here, not in the database, to keep the ack path
    free of writes (Slack's 3 s, our 100 ms target). With several replicas a replay that
    lands on another replica inside the 5-minute signature window is still harmless: trigger
    ids are single-use, view submissions are keyed by view id, and a status change that is
    already in effect is refused.
    """

    def __init__(self, ttl: float = 600.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, key: str, *, now: float | None = None) -> bool:
        moment = now if now is not None else time.monotonic()
        with self._lock:
            if len(self._seen) >= self.max_entries:
                cutoff = moment - self.ttl
                self._seen = {k: t for k, t in self._seen.items() if t > cutoff}
            seen_at = self._seen.get(key)
            if seen_at is not None and moment - seen_at < self.ttl:
                return False
            self._seen[key] = moment
            return True


def first_time(rt: Runtime, key: str) -> bool:
    """Record ``key``; False when it was recorded before (a replay or a retry)."""
    try:
        with rt.transaction() as session:
            if session.get(SeenRequest, key) is not None:
                return False
            session.add(SeenRequest(key=key))
    except IntegrityError:
        return False
    return True
