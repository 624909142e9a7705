"""``imas serve``: migrations, configuration file, workers, scheduler, HTTP server."""

from __future__ import annotations

import errno
import gc
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import uvicorn

from bot import config_file
from bot.domain.errors import ConfigError
from bot.runtime import Runtime
from bot.scheduler import Scheduler
from bot.settings import Settings, environment
from bot.steps import make_worker
from handlers.app import create_app

log = logging.getLogger("imas")


class Server:
    """Everything ``imas serve`` runs, startable in-process (tests, demo) or blocking."""

    def __init__(self, settings: Settings) -> None:
        settings.check_slack_pair()
        self.settings = settings
        self.rt = Runtime.build(settings)
        if settings.config_file is not None:
            try:
                document = config_file.load(
                    settings.config_file,
                    environment(),
                    allow_private=settings.allow_private_webhook_targets,
                )
            except ConfigError as exc:
                raise ConfigError(f"IMAS_CONFIG: {exc}") from exc
            with self.rt.transaction() as session:
                report = config_file.apply(
                    session, self.rt, document, source=str(settings.config_file)
                )
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
                # X-Forwarded-* only from IMAS_TRUSTED_PROXIES (uvicorn trusts loopback
                # by default, which let anyone on the host pick their client address)
                proxy_headers=bool(settings.trusted_proxies),
                forwarded_allow_ips=settings.trusted_proxies or "",
            )
        )
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None

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
            "IMAS listening on http://%s:%s (%s database; links use %s)",
            self.settings.host,
            self.port,
            kind,
            self.settings.base_url,
        )

    def start_workers(self) -> None:
        self.worker.start()
        if self.scheduler:
            self.scheduler.start()

    def stop_workers(self) -> None:
        if self.scheduler:
            self.scheduler.stop()
        self.worker.stop()

    def listening_socket(self) -> socket.socket:
        """The listening socket, bound here so that a port in use or an address this
        machine does not have is one ``ConfigError`` naming IMAS_HOST/IMAS_PORT. With
        several web processes, each binds the port with SO_REUSEPORT and the kernel
        spreads connections between them."""
        host, port = self.settings.host, self.settings.port
        shared = self.settings.reuse_port or self.settings.web_processes > 1
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if shared:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            hint = (
                "another process listens there: stop it or choose another IMAS_PORT"
                if exc.errno == errno.EADDRINUSE
                else "check IMAS_HOST (an address of this machine) and IMAS_PORT"
            )
            raise ConfigError(
                f"IMAS_HOST/IMAS_PORT ({host}:{port}): cannot listen: {exc.strerror or exc}: {hint}"
            ) from exc
        sock.set_inheritable(False)
        self._follow_port(int(sock.getsockname()[1]))
        return sock

    def _follow_port(self, port: int) -> None:
        """With IMAS_PORT=0 the port is known once bound: links follow it unless
        IMAS_BASE_URL was set."""
        self._bound_port = port
        if self.settings.port == 0 and self.settings.base_url_is_derived:
            self.settings.base_url = self.settings.served_url(port)

    def spawn_siblings(self) -> list[subprocess.Popen[bytes]]:
        """Start ``web_processes - 1`` more ``imas serve`` processes on the same port.

        Every process runs the whole service (HTTP, outbox workers, scheduler): outbox rows
        are claimed safely by any of them and the scheduler's lease picks one leader, so a
        sibling dying loses nothing.
        """
        env = environment() | {
            "IMAS_WEB_PROCESSES": "1",
            "IMAS_REUSE_PORT": "true",
            "IMAS_PORT": str(self.settings.port),
            "IMAS_PARENT_PID": str(os.getpid()),
        }
        return [
            subprocess.Popen([sys.executable, "-m", "handlers.cli", "serve"], env=env)  # noqa: S603
            for _ in range(self.settings.web_processes - 1)
        ]

    def _exit_with_parent(self) -> None:
        """A sibling started by ``spawn_siblings`` stops when the process that started it
        is gone (even if it was SIGKILLed), so no orphan keeps serving the port."""
        parent = environment().get("IMAS_PARENT_PID")
        if not parent:
            return

        def watch() -> None:
            while not self.server.should_exit:
                if os.getppid() != int(parent):
                    log.warning("parent process %s is gone: shutting down", parent)
                    self.server.should_exit = True
                    return
                time.sleep(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()

    def run(self) -> None:
        """Block until SIGINT/SIGTERM, then shut down gracefully."""
        # Many short request threads share the GIL with background Slack calls; a shorter
        # switch interval (default 5 ms) lets an ack's few hundred microseconds of work run
        # without waiting out other threads' slices.
        sys.setswitchinterval(0.0005)
        # Start-up objects (app, routes, models) never die: keep them out of every
        # collection so a full GC pass during a burst scans only request garbage.
        gc.freeze()
        try:
            sock = self.listening_socket()
        except ConfigError:
            self.rt.close()
            raise
        siblings = self.spawn_siblings() if self.settings.web_processes > 1 else []
        self._exit_with_parent()
        self.start_workers()
        self.announce()
        try:
            self.server.run(sockets=[sock])
        finally:
            for sibling in siblings:
                sibling.terminate()
            self.stop_workers()
            for sibling in siblings:
                sibling.wait(15)
            self.rt.close()

    def start_in_thread(self) -> None:
        self.start_workers()
        self._thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("HTTP server failed to start")
            threading.Event().wait(0.02)
        self._follow_port(self.port)

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        for srv in servers:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return self._bound_port or self.settings.port

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(10)
        self.stop_workers()
        self.rt.close()
