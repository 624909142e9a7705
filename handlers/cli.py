"""The ``imas`` command line. Errors print a clear message and exit non-zero (2 for bad
input or configuration, 1 for failures of the targets)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from bot import logs
from bot.domain.errors import ConfigError, ImasError
from bot.settings import Settings, load_settings


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        fail(str(exc))
    logs.configure(settings.log_level, settings.log_format)
    return settings


def runtime_or_exit(**overrides: Any) -> Any:
    from bot.runtime import Runtime

    settings = settings_or_exit(**overrides)
    try:
        return Runtime.build(settings)
    except ConfigError as exc:
        fail(str(exc))
    except Exception as exc:  # database unreachable, migrations failed
        fail(f"cannot open the database: {type(exc).__name__}: {exc}", 1)


@click.group(help="IMAS - Slack-first incident response.")
def main() -> None:
    pass


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
    settings = settings_or_exit(**overrides)
    try:
        server = Server(settings)
    except ImasError as exc:
        fail(str(exc))
    server.run()


@main.command(
    help="Play the seed guide against the Slack stand-in (no account needed; needs "
    "`pip install -e ./standins`)."
)
@click.option("--keep", is_flag=True, help="Keep serving after the walkthrough (Ctrl-C to stop).")
def demo(keep: bool) -> None:
    from handlers.demo import StandinsMissing, run_demo

    logs.configure("INFO", "text")
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

    document = _load_config(path)
    rt = runtime_or_exit()
    with rt.transaction() as session:
        report = config_file.apply(
            session, rt, document, actor=_cli_audit_actor(), source=str(path)
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


def _drain(rt: Any, seconds: float) -> None:
    """Run the incident's orchestration here, so it completes even with no server."""
    from bot.steps import make_worker
    from storage import outbox as outbox_store

    worker = make_worker(rt)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.run_once() == 0:
            with rt.transaction() as session:
                depth = outbox_store.depth(session)
            if not depth.get("pending") and not depth.get("failed") and not depth.get("in_flight"):
                return
            time.sleep(0.5)


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
    help="Seconds to spend running the orchestration here (0: leave it to the server).",
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
    if wait_seconds > 0:
        _drain(rt, wait_seconds)
    found = incidents.show(rt, actor=_cli_actor(), ref=created.id, detail=True)
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        click.echo(
            f"Incident declared: {found['short_id']} ({found['title']}, {found['severity']})"
        )


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
        try:
            outcome = incidents.set_status(
                rt, actor=_cli_actor(), ref=ref, status=status, summary=summary
            )
            short_id = outcome.incident["short_id"]
        except ImasError as exc:
            fail(getattr(exc, "message", str(exc)), 1)
        if wait_seconds > 0:
            _drain(rt, wait_seconds)
        click.echo(f"{short_id} is now {status}")


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

    rt = runtime_or_exit()
    results = run_checks(rt)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for result in results:
            mark = "ok  " if result.ok else "FAIL"
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

    rt = runtime_or_exit()
    ok, detail = send_test(rt, name)
    click.echo(detail)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
