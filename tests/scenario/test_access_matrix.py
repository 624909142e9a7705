"""The access policy through every door, from one table (issue 9).

Every Slack subcommand, button, modal submission, App Home, the 📌 reaction, every REST
route and the HTML page, × {public, private} incident × {not involved, involved,
responder, manager, admin}. The expected answer of each cell comes from the policy's
rules, written here independently of ``bot.access``:

* a private incident is visible to the people involved in it and to managers and admins;
* an act needs a minimum role (reopen: manager; view and join: viewer; others: responder).

Each cell runs against a fresh incident through a running server (signed Slack requests,
real HTTP). An allowed write leaves exactly one ``ok`` audit row for the act; a denied one
leaves no timeline row, no outbox row and exactly one ``denied`` audit row; a denied read
leaks neither the title nor the short id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from imas_standins.slack_api import HANG_GUARD_SECONDS, FakeSlack
from imas_standins.slack_driver import SlackDriver
from sqlalchemy import func, select

from bot.domain.actor import SYSTEM
from bot.flows import incidents
from bot.flows.declare import DeclareInput, declare
from handlers.server import Server
from handlers.slack.actions import resolve_modal, severity_modal, update_modal
from storage import auth, catalog
from storage.models import ApiUser, AuditEntry, Incident, OutboxItem, TimelineEvent
from tests.scenario.conftest import wait_until

CONFIG = """
teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    members: [U0RESP001]
services:
  - name: redis-prod
    owner_team: SRE Core
permissions:
  slack_default_role: viewer
  people:
    U0RESP001: responder
    U0MGR0001: manager
    U0ADMIN01: admin
"""

# persona -> (Slack user id, access role, involved in every incident of the matrix)
PERSONAS = {
    "not involved": ("U0VIEW001", "viewer", False),
    "involved": ("U0INVOLV1", "viewer", True),
    "responder": ("U0RESP001", "responder", False),
    "manager": ("U0MGR0001", "manager", False),
    "admin": ("U0ADMIN01", "admin", False),
}
RANK = {"viewer": 0, "responder": 1, "manager": 2, "admin": 3}
MIN_ROLE = {"view": "viewer", "join": "viewer", "reopen": "manager"}


def expected(persona: str, private: bool, action: str) -> bool:
    _user, role, involved = PERSONAS[persona]
    visible = not private or involved or RANK[role] >= RANK["manager"]
    return visible and RANK[role] >= RANK[MIN_ROLE.get(action, "responder")]


@dataclass
class World:
    server: Server
    slack: SlackDriver
    fake: FakeSlack
    tokens: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def rest(self, persona: str, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method,
            f"{self.base}{path}",
            json=body,
            headers={"Authorization": f"Token {self.tokens[persona]}"},
            timeout=HANG_GUARD_SECONDS,
        )


@dataclass(frozen=True)
class Cell:
    """One door: ``act(world, persona, short_id)`` performs it; ``action`` is the policy's
    name for it; ``kind`` what proves it was allowed:

    * ``write``: it changes the incident (one ``ok`` audit row; denied: one ``denied`` row
      and nothing else written);
    * ``read``: its answer shows the incident (denied: neither title nor short id);
    * ``modal``: it opens the form for an act (``views.open``; denied: one ``denied`` row);
    * ``join``: the clicker is invited to the war room (denied: never invited).

    ``resolved`` starts from a resolved incident."""

    door: str
    action: str
    kind: str
    act: Callable[[World, str, str], Any]
    resolved: bool = False


def slash(text: str) -> Callable[[World, str, str], Any]:
    def act(world: World, persona: str, short_id: str) -> Any:
        answer = world.slack.slash(text.format(ref=short_id), user_id=PERSONAS[persona][0])
        assert answer.status_code == 200
        return answer.text

    return act


def click(action_id: str) -> Callable[[World, str, str], Any]:
    def act(world: World, persona: str, short_id: str) -> Any:
        assert world.slack.click(action_id, short_id, user_id=PERSONAS[persona][0]).ok

    return act


def submit(builder: Callable[[str], dict[str, Any]], values: dict[str, Any]) -> Any:
    def act(world: World, persona: str, short_id: str) -> Any:
        view = {**builder(short_id), "id": f"V{short_id[4:]}{persona[:3].upper()}"}
        answer = world.slack.submit_view(view, values, user_id=PERSONAS[persona][0])
        assert answer.status_code == 200

    return act


def rest(method: str, path: str, body: Any = None) -> Callable[[World, str, str], Any]:
    def act(world: World, persona: str, short_id: str) -> Any:
        answer = world.rest(persona, method, path.format(ref=short_id), body)
        assert answer.status_code < 500, answer.text
        return answer.text

    return act


def home(world: World, persona: str, short_id: str) -> Any:
    user = PERSONAS[persona][0]
    before = len([c for c in world.fake.calls if c.method == "views.publish"])
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
    assert world.slack.event(event).status_code == 200
    call = wait_until(
        lambda: [c for c in world.fake.calls if c.method == "views.publish"][before:],
        message="App Home published",
    )[0]
    return str(call.args.get("view"))


def pin(world: World, persona: str, short_id: str) -> Any:
    room = f"C0ROOM{short_id[4:]}"
    ts = world.fake.post_as_user(room, "U0ONCALL1", "the root cause")
    event = {
        "type": "reaction_added",
        "user": PERSONAS[persona][0],
        "reaction": "pushpin",
        "item": {"type": "message", "channel": room, "ts": ts},
        "item_user": "U0ONCALL1",
        "event_ts": ts,
    }
    assert world.slack.event(event).status_code == 200


def invited(world: World, short_id: str) -> bool:
    room = f"C0ROOM{short_id[4:]}"
    return any(
        c.method == "conversations.invite" and c.args.get("channel") == room
        for c in world.fake.calls
    )


def declare_submission(world: World, persona: str, short_id: str) -> Any:
    from providers.slack_blocks import declare_modal

    view = declare_modal(
        services=["redis-prod"], scopes=[], lead_user_id=None, private_metadata="{}"
    )
    view = {**view, "id": f"VDECL{short_id[4:]}{persona[:3].upper()}"}
    values = {
        "title": f"declared by {persona}",
        "service": "redis-prod",
        "severity": "SEV3_MEDIUM",
    }
    assert world.slack.submit_view(view, values, user_id=PERSONAS[persona][0]).status_code == 200


CELLS = [
    # Slack subcommands
    Cell("slack /incident status", "view", "read", slash("status {ref}")),
    Cell("slack /incident show", "view", "read", slash("show {ref}")),
    Cell("slack /incident doc", "view", "read", slash("doc {ref}")),
    Cell("slack /incident list all", "view", "read", slash("list all")),
    Cell("slack /incident ack", "acknowledge", "write", slash("ack {ref}")),
    Cell("slack /incident acknowledge", "acknowledge", "write", slash("acknowledge {ref}")),
    Cell("slack /incident mitigate", "mitigate", "write", slash("mitigate {ref}")),
    Cell("slack /incident resolve", "resolve", "write", slash("resolve {ref} fixed it")),
    Cell("slack /incident reopen", "reopen", "write", slash("reopen {ref}"), resolved=True),
    Cell("slack /incident severity", "severity", "write", slash("severity SEV1 {ref}")),
    Cell("slack /incident note", "note", "write", slash("note {ref} looking at it")),
    Cell("slack /incident role", "role", "write", slash("role comms <@U0ONCALL1> {ref}")),
    Cell("slack /incident page", "page", "write", slash("page <@U0ONCALL1> {ref} help")),
    Cell("slack /incident repair", "repair", "write", slash("repair {ref}")),
    Cell("slack /incident followup", "note", "write", slash("followup Add alerts <@U0ONCALL1> {ref}")),
    Cell("slack /incident update (modal)", "update", "modal", slash("update {ref}")),
    # Slack buttons
    Cell("slack button Acknowledge", "acknowledge", "write", click("incident_ack")),
    Cell("slack button Mitigate", "mitigate", "write", click("incident_mitigate")),
    Cell("slack button Reopen", "reopen", "write", click("incident_reopen"), resolved=True),
    Cell("slack button Resolve (modal)", "resolve", "modal", click("incident_resolve")),
    Cell("slack button Post update (modal)", "update", "modal", click("incident_update")),
    Cell("slack button Change severity (modal)", "severity", "modal", click("incident_severity")),
    Cell("slack button Snooze", "snooze", "write", click("reminder_snooze_30")),
    Cell("slack button Join war room", "join", "join", click("incident_join")),
    # Slack modal submissions
    Cell("slack modal resolve", "resolve", "write", submit(resolve_modal, {"summary": "done"})),
    Cell("slack modal update", "update", "write", submit(update_modal, {"status_text": "better"})),
    Cell("slack modal severity", "severity", "write", submit(severity_modal, {"severity": "SEV1_CRITICAL"})),
    # Slack App Home and events
    Cell("slack App Home", "view", "read", home),
    Cell("slack 📌 reaction", "pin", "write", pin),
    # REST
    Cell("REST GET incidents/", "view", "read", rest("GET", "/api/v1/incidents/")),
    Cell("REST GET incidents/?search", "view", "read", rest("GET", "/api/v1/incidents/?search=Matrix")),
    Cell("REST GET incident", "view", "read", rest("GET", "/api/v1/incidents/{ref}/")),
    Cell("REST GET timeline", "view", "read", rest("GET", "/api/v1/incidents/{ref}/timeline/")),
    Cell("REST PATCH incident", "edit", "write", rest("PATCH", "/api/v1/incidents/{ref}/", {"title": "Renamed"})),
    Cell("REST POST acknowledge", "acknowledge", "write", rest("POST", "/api/v1/incidents/{ref}/acknowledge/")),
    Cell("REST POST mitigate", "mitigate", "write", rest("POST", "/api/v1/incidents/{ref}/mitigate/")),
    Cell("REST POST resolve", "resolve", "write", rest("POST", "/api/v1/incidents/{ref}/resolve/", {"summary": "ok"})),
    Cell("REST POST reopen", "reopen", "write", rest("POST", "/api/v1/incidents/{ref}/reopen/"), resolved=True),
    Cell("REST POST notes", "note", "write", rest("POST", "/api/v1/incidents/{ref}/notes/", {"text": "x"})),
    Cell("REST GET postmortem", "view", "read", rest("GET", "/api/v1/incidents/{ref}/postmortem/")),
    Cell("REST POST followups", "note", "write", rest("POST", "/api/v1/incidents/{ref}/followups/", {"title": "x"})),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str | None, sqlite_template: Any
) -> Any:
    """One server for the whole matrix (each cell has its own incident)."""
    import os
    import shutil

    from click.testing import CliRunner

    from bot.settings import load_settings
    from handlers.cli import main
    from tests.conftest import BOT_TOKEN, SECRET

    folder = tmp_path_factory.mktemp("matrix")
    if pg_database is None:
        shutil.copy(sqlite_template, folder / "imas.db")
        url = f"sqlite:///{folder / 'imas.db'}"
    else:
        url = pg_database
    (folder / "imas.yml").write_text(CONFIG)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("IMAS_", "SLACK_"))}
    env = {"IMAS_DATABASE_URL": url, "IMAS_SECRET_KEY": "test-secret-key"}
    result = CliRunner().invoke(main, ["config", "apply", str(folder / "imas.yml")], env=env)
    assert result.exit_code == 0, result.output
    fake = FakeSlack(bot_token=BOT_TOKEN)
    fake.start()
    for persona, (user, _role, _involved) in PERSONAS.items():
        fake.add_user(user, persona.replace(" ", "-"), email=f"{user.lower()}@example.com")
    fake.add_user("U0ONCALL1", "oncall", email="oncall@example.com")
    fake.add_channel("sre-core", channel_id="C0123456789")
    settings = load_settings(
        database_url=url,
        secret_key="test-secret-key",
        port=0,
        outbox_poll_seconds=0.2,
        scheduler_enabled=False,
        allow_private_webhook_targets=True,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.url,
    )
    server = Server(settings)
    server.start_in_thread()
    tokens: dict[str, str] = {}
    with server.rt.transaction() as session:
        for persona, (user, role, involved) in PERSONAS.items():
            person = catalog.ensure_person(
                session, ref=user, email=f"{user.lower()}@example.com", display_name=persona
            )
            account = ApiUser(
                username=persona.replace(" ", "-"),
                password_hash=auth.hash_password("x" * 12),
                role=role,
                person_id=person.id if involved else None,
            )
            session.add(account)
            session.flush()
            tokens[persona] = auth.create_token(
                session, name=persona, role=role, user_id=account.id
            )[1]
    slack = SlackDriver(f"http://127.0.0.1:{server.port}/slack/events", SECRET, fake)
    yield World(server, slack, fake, tokens)
    server.stop()
    fake.stop()
    os.environ.update(saved)
    if pg_database is not None:
        from sqlalchemy import create_engine, text

        from storage.models import Base

        engine = create_engine(pg_database)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()


def fresh_incident(world: World, *, private: bool, resolved: bool) -> str:
    rt = world.server.rt
    incident, _ = declare(
        rt,
        data=DeclareInput(
            title="Matrix incident", service="redis-prod", severity="SEV3_MEDIUM", private=private
        ),
        actor=SYSTEM,
    )
    short_id = incident.short_id
    incidents.assign_role(rt, actor=SYSTEM, ref=short_id, role="scribe", person="U0INVOLV1")
    room = f"C0ROOM{short_id[4:]}"
    world.fake.add_channel(f"inc-{short_id[4:].lower()}", channel_id=room, members=())
    with rt.transaction() as session:
        row = session.scalar(select(Incident).where(Incident.short_id == short_id))
        assert row is not None
        row.war_room_channel_id = room
    if resolved:
        incidents.set_status(rt, actor=SYSTEM, ref=short_id, status="RESOLVED")
    wait_until(lambda: outbox_idle(world, short_id), message="the incident's deliveries")
    return short_id


def outbox_idle(world: World, short_id: str) -> bool:
    """No delivery of the incident is pending: nothing will write behind the cell's back."""
    with world.server.rt.reading() as session:
        busy = session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .join(Incident, OutboxItem.incident_id == Incident.id)
            .where(Incident.short_id == short_id, OutboxItem.state.not_in(("done", "dead")))
        )
    return not busy


def footprint(world: World, short_id: str) -> dict[str, int]:
    with world.server.rt.reading() as session:
        incident_id = session.scalar(select(Incident.id).where(Incident.short_id == short_id))

        def count(model: Any, *where: Any) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

        return {
            "timeline": count(TimelineEvent, TimelineEvent.incident_id == incident_id),
            "outbox": count(OutboxItem, OutboxItem.incident_id == incident_id),
            "incidents": count(Incident),
            "audit ok": count(
                AuditEntry, AuditEntry.target == short_id, AuditEntry.outcome == "ok"
            ),
            "audit denied": count(
                AuditEntry, AuditEntry.outcome == "denied", AuditEntry.target == short_id
            ),
        }


def run_cell(world: World, cell: Cell, persona: str, private: bool) -> str | None:
    """None when the cell behaves as the policy says, else what went wrong."""
    short_id = fresh_incident(world, private=private, resolved=cell.resolved)
    before = footprint(world, short_id)
    opened = world.fake.count("views.open")
    answer = cell.act(world, persona, short_id)
    allowed = expected(persona, private, cell.action)
    if cell.kind == "read":
        text = str(answer or "")
        # Lists and App Home show other incidents too: only this one's short id counts. The
        # denial echoes the id the user typed ("No incident INC-…"), which leaks nothing.
        shown = (short_id in text or "Incident declared by" in text) and "No incident" not in text
        return None if shown == allowed else f"read shows={shown}: {text[:160]!r}"
    if cell.kind == "join":
        if allowed:
            wait_until(lambda: invited(world, short_id), message="the invitation")
            return None
        world.slack.slash("help", user_id=PERSONAS[persona][0])  # later work has run
        return "invited although denied" if invited(world, short_id) else None
    if cell.kind == "modal" and allowed:
        wait_until(lambda: world.fake.count("views.open") > opened, message="the form")
        after = footprint(world, short_id)
        return None if after == before else f"opening a form wrote: {before} -> {after}"

    def settled() -> dict[str, int] | None:
        after = footprint(world, short_id)
        done = (
            after["audit ok"] > before["audit ok"] or after["audit denied"] > before["audit denied"]
        )
        return after if done else None

    after = wait_until(settled, message=f"{cell.door} by {persona} audited")
    if allowed:
        if (
            after["audit ok"] - before["audit ok"] != 1
            or after["audit denied"] != before["audit denied"]
        ):
            return f"allowed act not audited once: {before} -> {after}"
        return None
    problems = [
        name
        for name in ("timeline", "outbox", "incidents", "audit ok")
        if after[name] != before[name]
    ]
    if after["audit denied"] - before["audit denied"] != 1:
        problems.append("audit denied")
    if cell.kind == "modal" and world.fake.count("views.open") != opened:
        problems.append("views.open")
    return f"denied act wrote {problems}: {before} -> {after}" if problems else None


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
@pytest.mark.parametrize("persona", list(PERSONAS))
def test_every_door_applies_the_policy(world: World, persona: str, private: bool) -> None:
    failures = []
    for cell in CELLS:
        problem = run_cell(world, cell, persona, private)
        if problem:
            expect = "allowed" if expected(persona, private, cell.action) else "denied"
            failures.append(f"{cell.door} ({expect}): {problem}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_declaring_needs_the_responder_role(world: World, persona: str) -> None:
    def declared() -> int:
        with world.server.rt.reading() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(Incident)
                    .where(Incident.title == f"declared by {persona}")
                )
                or 0
            )

    declare_submission(world, persona, "INC-000000")
    allowed = expected(persona, False, "declare")
    if allowed:
        wait_until(declared, message="the declaration")
    else:
        with world.server.rt.reading() as session:
            denied = session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.action == "incident.declare",
                    AuditEntry.outcome == "denied",
                    AuditEntry.actor_ref == f"slack:{PERSONAS[persona][0]}",
                )
            )
        assert denied == 1 and declared() == 0


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_the_html_page_needs_a_token_and_follows_the_access_policy(
    world: World, private: bool
) -> None:
    short_id = fresh_incident(world, private=private, resolved=False)
    url = f"{world.base}/incidents/{short_id}"
    anonymous = requests.get(url, timeout=HANG_GUARD_SECONDS)
    assert anonymous.status_code == 401 and "Matrix incident" not in anonymous.text
    for persona in PERSONAS:
        page = requests.get(
            url,
            headers={"Authorization": f"Token {world.tokens[persona]}"},
            timeout=HANG_GUARD_SECONDS,
        )
        visible = expected(persona, private, "view")
        assert page.status_code == (200 if visible else 404), persona
        assert ("Matrix incident" in page.text) is visible, persona
