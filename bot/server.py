"""``imas serve``: migrations, configuration file, workers, scheduler, HTTP server."""

from __future__ import annotations

import logging
import sys
import threading

import uvicorn

from bot import config_file
from bot.app import create_app
from bot.runtime import Runtime
from bot.scheduler import Scheduler
from bot.settings import Settings, environment
from bot.steps import make_worker

log = logging.getLogger("imas")


class Server:
    """Everything ``imas serve`` runs, startable in-process (tests, demo) or blocking."""

    def __init__(self, settings: Settings) -> None:
        settings.check_slack_pair()
        self.settings = settings
        self.rt = Runtime.build(settings)
        if settings.config_file is not None:
            document = config_file.load(settings.config_file, environment())
            with self.rt.transaction() as session:
                report = config_file.apply(session, self.rt, document)
            log.info("applied %s: %s", settings.config_file, report.summary().splitlines()[-1])
        self.app = create_app(self.rt)
        self.worker = make_worker(self.rt)
        self.scheduler = Scheduler(self.rt) if settings.scheduler_enabled else None
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=10,
            )
        )
        self._thread: threading.Thread | None = None

    def announce(self) -> None:
        if self.settings.slack_enabled:
            log.info(
                "Slack enabled: Request URL %s/slack/events (Slack API %s)",
                self.settings.base_url,
                self.settings.slack_api_url,
            )
        else:
            log.warning(
                "Slack is disabled: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to enable it "
                "(API, webhooks, CLI and scheduler run without it)"
            )
        if not self.settings.google_enabled:
            log.info(
                "Google Docs LID disabled: set GOOGLE_SERVICE_ACCOUNT_FILE (or _JSON) to enable it"
            )
        kind = "SQLite" if self.settings.is_sqlite else "PostgreSQL"
        log.info(
            "IMAS listening on http://%s:%s (%s database)",
            self.settings.host,
            self.settings.port,
            kind,
        )

    def start_workers(self) -> None:
        self.worker.start()
        if self.scheduler:
            self.scheduler.start()

    def stop_workers(self) -> None:
        if self.scheduler:
            self.scheduler.stop()
        self.worker.stop()

    def run(self) -> None:
        """Block until SIGINT/SIGTERM, then shut down gracefully."""
        # Many short request threads share the GIL with background Slack calls; a shorter
        # switch interval (default 5 ms) lets an ack's few hundred microseconds of work run
        # without waiting out other threads' slices.
        sys.setswitchinterval(0.0005)
        self.start_workers()
        self.announce()
        try:
            self.server.run()
        finally:
            self.stop_workers()
            self.rt.close()

    def start_in_thread(self) -> None:
        self.start_workers()
        self._thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("HTTP server failed to start")
            threading.Event().wait(0.02)

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        for srv in servers:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return self.settings.port

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(10)
        self.stop_workers()
        self.rt.close()
