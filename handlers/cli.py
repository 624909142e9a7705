"""The ``imas`` command line. Errors print a clear message and exit non-zero (2 for bad
input or configuration, 1 for failures of the targets)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from bot import logs
from bot.domain.errors import ConfigError, ImasError
from bot.settings import Settings, load_settings

_debug_flag = False


def debug_wanted() -> bool:
    """``--debug``, or ``IMAS_LOG_LEVEL=DEBUG`` in the environment or ``.env``."""
    if _debug_flag:
        return True
    level = os.environ.get("IMAS_LOG_LEVEL")
    if level is None:
        from dotenv import dotenv_values

        level = dotenv_values(".env").get("IMAS_LOG_LEVEL") if Path(".env").is_file() else None
    return (level or "").strip().upper() == "DEBUG"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` and exit; with ``--debug`` the exception being handled,
    if any, is printed first with its traceback."""
    if debug_wanted() and sys.exc_info()[0] is not None:
        traceback.print_exc()
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def one_line(message: str) -> str:
    """``invalid settings:\n  - A\n  - B`` as ``invalid settings: A; B``."""
    head, _, rest = message.partition("\n")
    items = [line.strip().removeprefix("- ") for line in rest.splitlines() if line.strip()]
    return f"{head} {'; '.join(items)}" if items else head


def config_message(exc: ConfigError) -> str:
    """Settings errors on one line; configuration-file errors keep one line per problem."""
    text = str(exc)
    return one_line(text) if text.startswith("invalid settings:") else text


def settings_or_exit(*, server: bool = False, **overrides: Any) -> Settings:
    """The settings, or one line and exit 2. One-shot commands (``server`` False) print
    their own outcomes, so their logs show errors only unless IMAS_LOG_LEVEL is set."""
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        fail(one_line(str(exc)))
    logs.configure(settings.log_level, settings.log_format)
    if not server and "log_level" not in settings.model_fields_set:
        for handler in logging.getLogger().handlers:  # our stderr handler only
            if handler.get_name() == "imas":
                handler.setLevel(logging.ERROR)
                # slack_sdk logs every refused connection; the step's outcome says it too.
                handler.addFilter(lambda record: not record.name.startswith("slack_sdk"))
    return settings


def runtime_or_exit(**overrides: Any) -> Any:
    from bot.runtime import Runtime

    settings = settings_or_exit(**overrides)
    try:
        return Runtime.build(settings)
    except ConfigError as exc:  # database unreachable, missing, unparsable (one line)
        fail(str(exc))


class ImasGroup(click.Group):
    """Every command's last line of defence: a configuration error is one line and exit 2,
    anything unexpected one line and exit 1; the traceback only with ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ConfigError as exc:
            fail(config_message(exc))
        except ImasError as exc:
            fail(getattr(exc, "message", str(exc)))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            fail(
                f"unexpected {type(exc).__name__}: {logs.redact(first)} "
                "(run with --debug for the traceback)",
                1,
            )


@click.group(cls=ImasGroup, help="IMAS - Slack-first incident response.")
@click.option(
    "--debug",
    is_flag=True,
    help="Show tracebacks with errors (also IMAS_LOG_LEVEL=DEBUG).",
)
def main(debug: bool) -> None:
    global _debug_flag
    _debug_flag = debug


@main.command(help="Run the HTTP server, the outbox workers and the scheduler.")
@click.option("--host", default=None, help="Listen address (IMAS_HOST).")
@click.option("--port", default=None, type=int, help="Listen port (IMAS_PORT).")
def serve(host: str | None, port: int | None) -> None:
    from handlers.server import Server

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = settings_or_exit(server=True, **overrides)
    try:
        server = Server(settings)
    except ConfigError as exc:
        fail(config_message(exc))
    except ImasError as exc:
        fail(str(exc))
    except Exception as exc:  # database unreachable or misconfigured: one line, exit 2
        from sqlalchemy.exc import SQLAlchemyError

        from storage.db import cannot_open

        if not isinstance(exc, SQLAlchemyError | ModuleNotFoundError | OSError):
            raise
        fail(cannot_open(settings.database_url, exc))
    server.run()


@main.command(
    help="Play the seed guide against the Slack stand-in (no account needed; needs "
    "`pip install -e ./standins`)."
)
@click.option("--keep", is_flag=True, help="Keep serving after the walkthrough (Ctrl-C to stop).")
def demo(keep: bool) -> None:
    from handlers.demo import StandinsMissing, run_demo

    logs.configure("INFO", "text")
    for handler in logging.getLogger().handlers:  # the demo prints the log lines it shows
        if handler.get_name() == "imas":
            handler.setLevel(logging.WARNING)
    try:
        code = run_demo(keep_running=keep)
    except StandinsMissing as exc:
        fail(str(exc))
    sys.exit(code)


@main.group(help="Database maintenance.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply pending migrations.")
def db_upgrade() -> None:
    rt = runtime_or_exit()
    rt.close()
    click.echo("database is up to date")


@main.group(help="Configuration as code.")
def config() -> None:
    pass


def _load_config(path: Path) -> Any:
    from bot import config_file
    from bot.settings import environment, load_settings

    try:
        allow_private = load_settings().allow_private_webhook_targets
    except ConfigError:
        # Unusable settings are reported by serve/doctor; check targets at the strictest.
        allow_private = False
    try:
        return config_file.load(path, environment(), allow_private=allow_private)
    except ConfigError as exc:
        fail(str(exc))


@config.command("validate", help="Check a configuration file without writing anything.")
@click.argument("path", type=click.Path(path_type=Path))
def config_validate(path: Path) -> None:
    document = _load_config(path)
    click.echo(
        f"{path}: valid ({len(document.teams)} teams, {len(document.services)} services, "
        f"{len(document.impact_scopes)} impact scopes, {len(document.providers)} providers, "
        f"{len(document.alert_rules)} alert rules)"
    )


@config.command("apply", help="Create or update everything the file describes (idempotent).")
@click.argument("path", type=click.Path(path_type=Path))
def config_apply(path: Path) -> None:
    from bot import config_file
    from handlers.terminal import Progress

    document = _load_config(path)
    rt = runtime_or_exit()
    with Progress(f"applying {path}") as progress, rt.transaction() as session:
        report = config_file.apply(
            session,
            rt,
            document,
            actor=_cli_audit_actor(),
            source=str(path),
            progress=progress.step,
        )
    click.echo(report.summary())


@config.command("export", help="Print the current configuration (secrets as ${VAR} references).")
def config_export() -> None:
    from bot import config_file

    rt = runtime_or_exit()
    with rt.transaction() as session:
        click.echo(config_file.export(session, rt), nl=False)


@main.group(help="Incidents from a terminal (for when Slack itself is down).")
def incident() -> None:
    pass


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "cli"


def _cli_actor() -> Any:
    from bot.domain.actor import Actor

    # The local operator: whoever can run ``imas`` can read the database and the key file,
    # so the access policy treats them as an admin (the door, not a role, decides).
    name = _os_user()
    return Actor(label=name, source="cli", ref=name)


def _cli_audit_actor() -> Any:
    """The audit actor of this command: the operating-system user, door ``cli``."""
    from storage.audit import AuditActor

    name = _os_user()
    return AuditActor(label=name, kind="cli", ref=name, door="cli")


def _step_name(item: Any) -> str:
    """``notify PagerDuty -> service:redis-prod``, ``war_room``…"""
    parts = [item.kind.replace("_", " ")]
    if item.event and item.kind == "notify":
        parts.append(f"({item.event})")
    if item.provider_name:
        parts.append(f"via {item.provider_name}")
    if item.recipient_kind:
        parts.append(f"to {item.recipient_kind}:{item.recipient}")
    return " ".join(parts)


STEPS_FAILED = "error: some steps failed or did not finish (see above); imas serve retries them"


def _last_step_id(rt: Any, ref: str) -> int:
    """The newest outbox row of incident ``ref`` (0 if none or unknown): a status change
    reports only the steps it adds."""
    from sqlalchemy import func, select

    from storage.incidents import get_incident
    from storage.models import OutboxItem

    with rt.reading() as session:
        incident = get_incident(session, ref=ref)
        if incident is None:
            return 0
        query = select(func.max(OutboxItem.id)).where(OutboxItem.incident_id == incident.id)
        return int(session.scalar(query) or 0)


def _drain(
    rt: Any, incident_id: int, seconds: float, *, echo: bool = True, after_id: int = 0
) -> bool:
    """Run the incident's steps here, so they complete even with no server, printing each
    outcome as it lands; True when every step succeeded.

    Stops when every step of the incident is done or dead, when the only ones left are
    waiting to retry a failure (the retry belongs to ``imas serve``), or after ``seconds``
    (a step already running finishes first; its HTTP timeouts bound it). A step not done
    by then counts as not delivered: False.
    """
    from bot.steps import make_worker
    from storage import outbox as outbox_store

    worker = make_worker(rt)
    deadline = time.monotonic() + seconds
    reported: dict[int, tuple[str, int]] = {}
    failed = False

    def report() -> tuple[list[Any], list[Any]]:
        nonlocal failed
        with rt.reading() as session:
            items = [
                item
                for item in outbox_store.for_incident(session, incident_id=incident_id)
                if item.id > after_id
            ]
            for item in items:
                session.expunge(item)
        for item in items:
            seen = (item.state, item.attempts)
            if item.state in ("pending", "in_flight") or reported.get(item.id) == seen:
                continue
            reported[item.id] = seen
            if item.state == "done":
                line = f"  ok      {_step_name(item)}"
            elif item.state == "dead":
                failed = True
                line = f"  FAILED  {_step_name(item)}: {item.last_error}"
            else:  # failed, to be retried
                failed = True
                line = (
                    f"  FAILED  {_step_name(item)} (attempt {item.attempts}, will be retried "
                    f"by imas serve): {item.last_error}"
                )
            if echo:
                click.echo(line)
        open_items = [i for i in items if i.state in outbox_store.OPEN_STATES]
        retrying = [i for i in open_items if i.state == "failed"]
        return open_items, retrying

    while True:
        ran = worker.run_once() if time.monotonic() < deadline else 0
        open_items, retrying = report()
        if not open_items:
            break
        if ran == 0 and len(retrying) == len(open_items):
            break  # only retries left: those are the server's job
        if time.monotonic() >= deadline:
            for item in open_items:
                if item.state != "failed":
                    failed = True  # not confirmed within --wait: not reported as sent
                    if echo:
                        click.echo(f"  waiting {_step_name(item)} (not done within --wait)")
            break
        if ran == 0:
            time.sleep(0.2)
    return not failed


@incident.command("declare", help="Declare an incident; runs its orchestration before returning.")
@click.option("--title", required=True)
@click.option("--service", required=True, help="Service name or id.")
@click.option(
    "--severity",
    required=True,
    help="SEV1_CRITICAL … SEV4_LOW, or an alias: SEV1…SEV4, critical/high/medium/low.",
)
@click.option("--description", default="")
@click.option("--scope", "scopes", multiple=True, help="Impact scope name (repeatable).")
@click.option("--lead", default=None, help="Lead's e-mail or Slack user id.")
@click.option("--private", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--wait",
    "wait_seconds",
    default=30.0,
    show_default=True,
    help="At most this many seconds running the orchestration here, printing each step's "
    "outcome (0: leave it to the server). Exit 1 when a step failed.",
)
def incident_declare(
    title: str,
    service: str,
    severity: str,
    description: str,
    scopes: tuple[str, ...],
    lead: str | None,
    private: bool,
    as_json: bool,
    wait_seconds: float,
) -> None:
    from bot.flows import incidents
    from bot.flows.declare import DeclareInput, declare

    rt = runtime_or_exit()
    data = DeclareInput(
        title=title,
        service=service,
        severity=severity,
        description=description,
        scopes=list(scopes),
        lead=lead,
        private=private,
    )
    try:
        created, _ = declare(rt, data=data, actor=_cli_actor())
    except ImasError as exc:
        fail(getattr(exc, "message", str(exc)))
    if not as_json:
        found = incidents.show(rt, actor=_cli_actor(), ref=created.id)
        click.echo(
            f"Incident declared: {found['short_id']} ({found['title']}, {found['severity']})"
            f"\n  {found['url']}"
        )
    ok = _drain(rt, created.id, wait_seconds, echo=not as_json) if wait_seconds > 0 else True
    if as_json:
        click.echo(
            json.dumps(
                incidents.show(rt, actor=_cli_actor(), ref=created.id, detail=True), indent=2
            )
        )
    elif not ok:
        click.echo(STEPS_FAILED, err=True)
    sys.exit(0 if ok else 1)


@incident.command("list", help="List incidents, newest first.")
@click.option("--status", default=None)
@click.option("--open", "open_only", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
def incident_list(status: str | None, open_only: bool, as_json: bool, limit: int) -> None:
    from bot.domain.enums import parse_status
    from bot.flows import incidents
    from storage.incidents import IncidentFilter

    rt = runtime_or_exit()
    try:
        wanted = [parse_status(status).value] if status else None
    except ImasError as exc:
        fail(getattr(exc, "message", str(exc)))
    filters = IncidentFilter(status=wanted, open_only=open_only)
    _total, data = incidents.list_incidents(rt, actor=_cli_actor(), filters=filters, limit=limit)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for row in data:
        click.echo(
            f"{row['short_id']}  {row['severity']:<13} {row['status']:<12} {row['service']:<20} {row['title']}"
        )


@incident.command("show", help="One incident with its timeline and deliveries.")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
def incident_show(ref: str, as_json: bool) -> None:
    from bot.flows import incidents

    rt = runtime_or_exit()
    try:
        data = incidents.show(rt, actor=_cli_actor(), ref=ref, detail=True)
    except ImasError as exc:
        fail(getattr(exc, "message", str(exc)), 1)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{data['short_id']} {data['title']}\n  {data['severity']} {data['status']} "
        f"service={data['service']} team={data['team']} lead={data['lead']}"
    )
    for event in data["timeline"]:
        click.echo(f"  {event['at']}  {event['type']:<20} {event['message']}")
    for delivery in data["deliveries"]:
        error = f"  ({delivery['last_error']})" if delivery["last_error"] else ""
        click.echo(
            f"  [{delivery['state']}] {delivery['kind']} {delivery['provider'] or ''} "
            f"{delivery['recipient'] or ''} attempts={delivery['attempts']}{error}"
        )


@incident.command("postmortem", help="The post-mortem draft of an incident, as Markdown.")
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None)
def incident_postmortem(ref: str, output: str | None) -> None:
    from bot.flows import incidents

    rt = runtime_or_exit()
    try:
        _short_id, text = incidents.postmortem_markdown(rt, actor=_cli_actor(), ref=ref)
    except ImasError as exc:
        fail(getattr(exc, "message", str(exc)), 2)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text)


def _status_command(name: str, status: str, help_text: str) -> None:
    @incident.command(name, help=help_text)
    @click.argument("ref")
    @click.option("--summary", default=None, help="Resolution summary (resolve).")
    @click.option("--wait", "wait_seconds", default=10.0, show_default=True)
    def command(ref: str, summary: str | None, wait_seconds: float) -> None:
        from bot.flows import incidents

        rt = runtime_or_exit()
        after_id = _last_step_id(rt, ref)
        try:
            outcome = incidents.set_status(
                rt, actor=_cli_actor(), ref=ref, status=status, summary=summary
            )
            short_id = outcome.incident["short_id"]
            incident_id = outcome.incident["id"]
        except ImasError as exc:
            fail(getattr(exc, "message", str(exc)), 1)
        click.echo(f"{short_id} is now {status}")
        ok = _drain(rt, incident_id, wait_seconds, after_id=after_id) if wait_seconds > 0 else True
        if not ok:
            click.echo(STEPS_FAILED, err=True)
        sys.exit(0 if ok else 1)


_status_command("ack", "ACKNOWLEDGED", "Acknowledge an incident.")
_status_command("mitigate", "MITIGATED", "Mark an incident mitigated.")
_status_command("resolve", "RESOLVED", "Resolve an incident.")
_status_command("reopen", "TRIGGERED", "Reopen a resolved incident.")


@main.group(help="API tokens.")
def token() -> None:
    pass


@token.command("create", help="Create an API token; it is printed once.")
@click.option("--name", required=True)
@click.option(
    "--role", required=True, type=click.Choice(["viewer", "responder", "manager", "admin"])
)
@click.option("--json", "as_json", is_flag=True)
def token_create(name: str, role: str, as_json: bool) -> None:
    from storage import audit, auth

    rt = runtime_or_exit()
    with rt.transaction() as session:
        row, clear = auth.create_token(session, name=name, role=role)
        audit.record(
            session,
            **_cli_audit_actor().fields(),
            action="token.create",
            target_type="token",
            target=row.id,
            changes={"name": [None, name], "role": [None, role]},
        )
    click.echo(json.dumps({"token": clear, "name": name, "role": role}) if as_json else clear)


@token.command("revoke", help="Revoke tokens by id, name or prefix.")
@click.argument("ref")
def token_revoke(ref: str) -> None:
    from storage import audit, auth

    rt = runtime_or_exit()
    who = _cli_audit_actor()
    with rt.transaction() as session:
        rows = auth.revoke_tokens(session, ref=ref)
        for row in rows:
            audit.record(
                session,
                **who.fields(),
                action="token.revoke",
                target_type="token",
                target=row.id,
                changes={"revoked_at": [None, row.revoked_at]},
                detail=f"token {row.name} ({row.role})",
            )
    if not rows:
        fail(f"no active token matches {ref!r}", 1)
    click.echo(f"revoked {len(rows)} token(s)")


@main.group(help="API users (for POST /api/auth/token/).")
def user() -> None:
    pass


@user.command("create", help="Create a user; the password is read from the terminal or stdin.")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["viewer", "responder", "manager", "admin"])
)
def user_create(username: str, role: str) -> None:
    from storage import audit, auth

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        fail("the password must have at least 8 characters")
    rt = runtime_or_exit()
    with rt.transaction() as session:
        if auth.get_user(session, username=username) is not None:
            fail(f"user {username!r} already exists")
        created = auth.create_user(session, username=username, password=password, role=role)
        audit.record(
            session,
            **_cli_audit_actor().fields(),
            action="user.create",
            target_type="user",
            target=username,
            changes={"username": [None, username], "role": [None, role]},
            detail=f"user id {created.id}",
        )
    click.echo(f"user {username} created with role {role}")


@main.group("audit", help="The audit log: who did what, through which door.")
def audit_group() -> None:
    pass


def _parse_since(value: str) -> Any:
    """An ISO 8601 time (UTC when it has no offset) or a duration back from now: ``30m``,
    ``12h``, ``7d``."""
    import re
    from datetime import UTC, datetime, timedelta

    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhd])\s*", value)
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"--since: expected an ISO 8601 time or a duration like 12h or 7d, not {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_group.command("list", help="Audit rows, newest first.")
@click.option("--action", default=None, help="Action or prefix (incident, token.create).")
@click.option("--actor", default=None, help="Slack user id, token id, username or label.")
@click.option("--target", default=None, help="Target id (e.g. INC-A1B2C3, a token id).")
@click.option("--since", default=None, help="ISO 8601 time, or a duration back (12h, 7d).")
@click.option("--outcome", default=None, type=click.Choice(["ok", "denied"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
def audit_list(
    action: str | None,
    actor: str | None,
    target: str | None,
    since: str | None,
    outcome: str | None,
    limit: int,
    as_json: bool,
) -> None:
    from storage import audit as store

    filters = store.AuditFilter(
        action=action or None,
        actor=actor or None,
        target=target or None,
        outcome=outcome,
        since=_parse_since(since) if since else None,
    )
    rt = runtime_or_exit()
    with rt.reading() as session:
        _total, rows = store.list_entries(session, filters=filters, offset=0, limit=limit)
        data = [store.entry_json(row) for row in rows]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if data:
        click.echo(f"{'AT (UTC)':<19}  {'DOOR':<7} {'ACTOR':<20} {'ACTION':<24} TARGET")
    for row in data:
        at = (row["at"] or "")[:19].replace("T", " ")
        target_text = (
            f"{row['target_type']}:{row['target']}" if row["target"] else row["target_type"]
        )
        mark = "" if row["outcome"] == "ok" else f"  DENIED {row['detail'] or ''}".rstrip()
        click.echo(
            f"{at}  {row['door']:<7} {row['actor']:<20} {row['action']:<24} {target_text}{mark}"
        )


@main.command(help="Check the configuration against the live services.")
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json: bool) -> None:
    from bot.doctor import run_checks
    from handlers.terminal import Progress

    rt = runtime_or_exit()
    with Progress("doctor") as progress:
        results = run_checks(rt, progress.step)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for result in results:
            mark = "FAIL" if not result.ok else "warn" if result.warning else "ok  "
            click.echo(f"[{mark}] {result.name}: {result.detail}")
    sys.exit(0 if all(r.ok for r in results) else 1)


@main.group(help="Notification providers.")
def provider() -> None:
    pass


@provider.command(
    "test", help="Send a test notification through one provider and print the answer."
)
@click.argument("name")
def provider_test(name: str) -> None:
    from bot.doctor import send_test
    from handlers.terminal import Progress

    rt = runtime_or_exit()
    with Progress("provider test") as progress:
        progress.step(f"sending a test notification through {name}")
        ok, detail = send_test(rt, name)
    click.echo(detail)
    sys.exit(0 if ok else 1)


# -- on-call (bot.flows.oncall) --------------------------------------------------------


class _OnCallGroup(click.Group):
    """``imas oncall [team] [--at ISO]`` is ``imas oncall show ...``; ``override`` is a
    subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


def _iso(value: str | None, option: str) -> Any:
    """An ISO 8601 time (UTC when it has no offset), or None."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option}: expected an ISO 8601 time like 2026-03-29T09:00+02:00, not {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@main.group("oncall", cls=_OnCallGroup, help="Who is on call (`imas oncall [TEAM] [--at ISO]`).")
def oncall_group() -> None:
    pass


@oncall_group.command("show", help="Who is on call now, or at --at, for TEAM or every team.")
@click.argument("team", required=False)
@click.option("--at", "at_text", default=None, help="ISO 8601 time (UTC without offset).")
@click.option("--json", "as_json", is_flag=True)
def oncall_show(team: str | None, at_text: str | None, as_json: bool) -> None:
    from bot.flows import oncall

    at = _iso(at_text, "--at")
    rt = runtime_or_exit()
    try:
        answers = oncall.on_call(rt, actor=_cli_actor(), team=team, at=at)
    except ImasError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps([a.as_json() for a in answers], indent=2))
        return
    if not answers:
        click.echo("No teams configured.")
    for answer in answers:
        who = answer.person or "nobody"
        until = f" until {answer.until:%Y-%m-%d %H:%M} UTC" if answer.until else ""
        schedule = f" ({answer.schedule})" if answer.schedule else ""
        click.echo(f"{answer.team}: {who}{until}{schedule}")


@oncall_group.command(
    "override", help="PERSON (Slack user id or e-mail) covers TEAM (or a schedule) for a while."
)
@click.argument("team")
@click.argument("person")
@click.option("--for", "duration", default=None, help="How long: 2h, 30m, 1h30m, 1d.")
@click.option("--from", "start_text", default=None, help="Start, ISO 8601 (default now).")
@click.option("--until", "end_text", default=None, help="End, ISO 8601 (instead of --for).")
def oncall_override(
    team: str, person: str, duration: str | None, start_text: str | None, end_text: str | None
) -> None:
    from bot.flows import oncall

    start, end = _iso(start_text, "--from"), _iso(end_text, "--until")
    rt = runtime_or_exit()
    try:
        length = oncall.parse_duration(duration) if duration is not None else None
        result = oncall.create_override(
            rt,
            actor=_cli_actor(),
            target=team,
            person=person,
            start=start,
            end=end,
            duration=length,
        )
    except ImasError as exc:
        fail(str(exc))
    click.echo(
        f"{result['person']} covers {result['schedule']} from {result['starts_at']} "
        f"to {result['ends_at']}"
    )


if __name__ == "__main__":
    main()
