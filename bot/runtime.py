"""The runtime: settings, database, secrets and outbound clients, built once per process
and passed to flows, handlers and workers (no globals, no ``os.environ`` outside settings).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import startup_errors
from bot.breaker import CircuitBreakers
from bot.crypto import SecretBox, secret_box
from bot.domain.errors import ConfigError, PermanentProviderError
from bot.settings import Settings
from providers.base import NotificationProvider
from providers.http import HttpClient
from providers.registry import build_provider
from providers.slack_api import SlackApi
from storage import catalog
from storage.db import (
    make_engine,
    make_read_session_factory,
    make_session_factory,
    transaction,
    upgrade,
)
from storage.models import NotificationProviderRow, utcnow

if TYPE_CHECKING:
    from providers.google_docs import GoogleDocsLid

APP_SLACK_PROVIDER = "Slack (app)"


class AckGate:
    """Lets Slack's acks go first.

    The HTTP layer counts the Slack requests being answered (``begin``/``end``);
    background work (post-ack Slack calls, outbox steps) calls ``wait`` before starting and
    waits while any is in progress, at most ``max_wait`` seconds. In a burst of
    declarations the acks, which Slack times out at 3 s, get the CPU first; with no
    request in progress ``wait`` returns at once. The cap keeps ``views.open`` well inside
    a trigger id's 3 seconds.
    """

    def __init__(self, max_wait: float = 0.3) -> None:
        self.max_wait = max_wait
        self._answering = 0
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            self._answering += 1

    def end(self) -> None:
        with self._lock:
            self._answering -= 1

    def wait(self) -> None:
        deadline = time.monotonic() + self.max_wait
        while self._answering > 0 and time.monotonic() < deadline:
            time.sleep(0.005)


def open_database(url: str, *, migrate: bool) -> Engine:
    """The engine, migrated to the latest schema. Raises ConfigError with one line naming
    ``IMAS_DATABASE_URL`` (password hidden), the cause and a hint (see bot/startup_errors)."""
    if url.startswith("sqlite"):
        problem = startup_errors.sqlite_folder_problem(url)
        if problem:
            raise ConfigError(
                f"{startup_errors.SETTING} ({startup_errors.redact_url(url)}): {problem}"
            )
    try:
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
    except Exception as exc:
        raise ConfigError(startup_errors.describe_database_error(url, exc)) from exc
    return engine


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    box: SecretBox
    http: HttpClient
    clock: Callable[[], datetime] = utcnow
    outbox_wake: threading.Event = field(default_factory=threading.Event)
    breakers: CircuitBreakers = field(init=False)
    ack_gate: AckGate = field(default_factory=AckGate)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _providers: dict[tuple[str, str], NotificationProvider] = field(default_factory=dict)
    _slack_api: SlackApi | None = None
    _lid: Any = None
    _lid_built: bool = False

    def __post_init__(self) -> None:
        # Read ``self.clock`` at call time: tests swap it for a controlled clock.
        self.breakers = CircuitBreakers(clock=lambda: self.clock().timestamp())

    @classmethod
    def build(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        engine = open_database(settings.database_url, migrate=migrate)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            read_sessions=make_read_session_factory(engine),
            box=secret_box(settings),
            http=HttpClient(
                connect_timeout=settings.http_connect_timeout,
                read_timeout=settings.http_read_timeout,
                allow_private=settings.allow_private_webhook_targets,
            ),
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only (never queues behind writers on SQLite)."""
        with transaction(self.read_sessions) as session:
            yield session

    def wake_outbox(self) -> None:
        self.outbox_wake.set()

    def close(self) -> None:
        self.engine.dispose()

    # -- providers -------------------------------------------------------------------

    def provider_config(self, row: NotificationProviderRow) -> dict[str, Any]:
        config = self.box.decrypt_json(row.config_encrypted)
        if row.type == "SLACK":
            config.setdefault("endpoint", self.settings.slack_api_url)
        return config

    def provider(self, row: NotificationProviderRow) -> NotificationProvider:
        """The provider instance for ``row`` (cached while its config is unchanged)."""
        cache_key = (row.name, row.config_encrypted)
        with self._lock:
            cached = self._providers.get(cache_key)
            if cached is None:
                cached = build_provider(
                    type_name=row.type,
                    name=row.name,
                    config=self.provider_config(row),
                    http=self.http,
                )
                self._providers[cache_key] = cached
            return cached

    def app_slack_provider(self) -> NotificationProvider | None:
        """A SLACK provider using the app's own token, when Slack is enabled."""
        if self.settings.slack_bot_token is None:
            return None
        key = (APP_SLACK_PROVIDER, "")
        with self._lock:
            if key not in self._providers:
                self._providers[key] = build_provider(
                    type_name="SLACK",
                    name=APP_SLACK_PROVIDER,
                    config={
                        "bot_token": self.settings.slack_bot_token.get_secret_value(),
                        "endpoint": self.settings.slack_api_url,
                    },
                    http=self.http,
                )
            return self._providers[key]

    def primary_slack(self, session: Session) -> NotificationProvider | None:
        """The provider that talks to the team's workspace: the first active SLACK provider
        by name, else the app's own token."""
        for row in catalog.list_providers(session, active_only=True):
            if row.type == "SLACK":
                return self.provider(row)
        return self.app_slack_provider()

    def provider_by_name(self, session: Session, name: str) -> NotificationProvider:
        if name == APP_SLACK_PROVIDER:
            provider = self.app_slack_provider()
            if provider is None:
                raise PermanentProviderError("Slack is not configured (SLACK_BOT_TOKEN unset)")
            return provider
        row = catalog.get_provider(session, name=name)
        if row is None:
            raise PermanentProviderError(f"provider {name!r} no longer exists")
        return self.provider(row)

    def slack_api(self, session: Session) -> SlackApi | None:
        """Web API client for war rooms: the app token, else the primary SLACK provider's."""
        if self.settings.slack_bot_token is not None:
            with self._lock:
                if self._slack_api is None:
                    self._slack_api = SlackApi(
                        token=self.settings.slack_bot_token.get_secret_value(),
                        base_url=self.settings.slack_api_url,
                        timeout=self.settings.http_read_timeout,
                        policy=self.http.policy,
                    )
                return self._slack_api
        provider = self.primary_slack(session)
        api = getattr(provider, "api", None)
        return api if isinstance(api, SlackApi) else None

    def lid(self) -> GoogleDocsLid | None:
        """The Google Docs LID provider, or None when Google is not configured."""
        with self._lock:
            if not self._lid_built:
                if self.settings.google_enabled:
                    from providers.google_docs import GoogleDocsLid

                    self._lid = GoogleDocsLid.from_settings(self.settings)
                self._lid_built = True
            return self._lid  # type: ignore[no-any-return]
