"""Issue 11 item 6: the database goes away under a running server, as users see it.

A throw-away PostgreSQL (initdb + pg_ctl, its own port and data directory, started and
stopped by the test) serves a running IMAS. While it is stopped: ``/incident`` opens a
modal saying the database is unreachable, ``/incident list`` answers an ephemeral, a
declare-modal submission gets an error on the form, REST and webhooks answer 503 with
``Retry-After``, ``/readyz`` 503. Once it is started again, the same server (no restart)
declares the incident once, with nothing partial left from the outage.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select

from handlers.slack.outage import DB_DOWN_DECLARE, DB_DOWN_TEXT
from storage.models import Incident, OutboxItem
from tests.api_helpers import WEBHOOK_TOKEN
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowAwayPostgres:
    """A PostgreSQL cluster of its own (trust auth, 127.0.0.1 only) under a temp dir."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="imas-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        # PostgreSQL refuses to run as root: run it as the postgres user then.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            args,
            check=True,
            user=self.user,
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def init(self) -> None:
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[ThrowAwayPostgres]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("initdb/pg_ctl not found (install the postgresql package)")
    pg = ThrowAwayPostgres(initdb, pg_ctl)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.remove()


def test_postgres_outage_as_users_see_it(tmp_path, postgres, start_server, driver, fake_slack):
    apply_seed_config(tmp_path, postgres.url)
    server = start_server(database_url=postgres.url, webhook_token=WEBHOOK_TOKEN)
    base = f"http://127.0.0.1:{server.port}"
    slack = driver(server)
    assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
    slack.slash("")  # the declare form opens while the database is up
    fake_slack.wait_for("views.open")
    form = fake_slack.last_view()
    values = {"title": "[TEST] Redis down", "service": "redis-prod", "severity": "SEV3_MEDIUM"}

    postgres.stop()

    # Slack: a modal submission gets an error on the form, nothing recorded.
    submitted = slack.submit_view(form, values)
    assert submitted.status_code == 200
    answer: dict[str, Any] = submitted.json()
    assert answer["response_action"] == "errors"
    assert list(answer["errors"].values()) == [DB_DOWN_DECLARE]
    # /incident list: an ephemeral saying so.
    listed = slack.slash("list")
    assert listed.status_code == 200
    assert listed.json() == {"response_type": "ephemeral", "text": DB_DOWN_TEXT}
    # /incident: a modal saying so, instead of the declare form.
    opened = len(fake_slack.views_opened)
    assert slack.slash("").status_code == 200
    wait_until(lambda: len(fake_slack.views_opened) > opened, "the outage modal")
    outage_view = fake_slack.last_view()
    assert "cannot reach its database" in str(outage_view["blocks"])
    # REST, webhooks, readiness: 503 with Retry-After.
    rest = requests.get(
        f"{base}/api/v1/incidents/", headers={"Authorization": "Bearer imas_some-token"}, timeout=30
    )
    assert rest.status_code == 503 and rest.headers.get("Retry-After")
    hook = requests.post(
        f"{base}/api/v1/webhooks/alertmanager/",
        headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
        json={"version": "4", "status": "firing", "alerts": []},
        timeout=30,
    )
    assert hook.status_code == 503 and hook.headers.get("Retry-After"), hook.text
    assert requests.get(f"{base}/readyz", timeout=30).status_code == 503

    postgres.start()

    # The same server, no restart: ready, and the form can be submitted again.
    wait_until(lambda: requests.get(f"{base}/readyz", timeout=30).status_code == 200, "ready")
    again = slack.submit_view(form, values)
    assert again.status_code == 200 and "errors" not in again.text, again.text
    listed = slack.slash("list")
    assert listed.status_code == 200 and "[TEST] Redis down" in listed.text
    engine = create_engine(postgres.url)
    try:

        def settled() -> bool:
            with engine.connect() as conn:
                return not conn.execute(
                    select(func.count())
                    .select_from(OutboxItem)
                    .where(OutboxItem.state.in_(("pending", "in_flight", "failed")))
                ).scalar()

        wait_until(settled, "the outbox to finish")
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Incident)).scalar() == 1
            assert not conn.execute(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.state == "dead")
            ).scalar()
    finally:
        engine.dispose()
