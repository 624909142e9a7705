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


@main.command(help="Play the seed guide against a built-in Slack stand-in (no account needed).")
@click.option("--keep", is_flag=True, help="Keep serving after the walkthrough (Ctrl-C to stop).")
def demo(keep: bool) -> None:
    from handlers.demo import run_demo

    logs.configure("INFO", "text")
    sys.exit(run_demo(keep_running=keep))


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
        report = config_file.apply(session, rt, document)
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


def _cli_actor() -> Any:
    import getpass

    from bot.flows.common import Actor

    return Actor(label=getpass.getuser(), source="cli")


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
    type=click.Choice(["SEV1_CRITICAL", "SEV2_HIGH", "SEV3_MEDIUM", "SEV4_LOW"]),
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
    from bot.flows.declare import DeclareInput, declare
    from bot.presenter import incident_json

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
    with rt.transaction() as session:
        from storage import incidents as store

        found = store.get_incident(session, ref=created.id)
        assert found is not None
        if as_json:
            click.echo(json.dumps(incident_json(session, rt, found, detail=True), indent=2))
        else:
            click.echo(f"Incident créé: {found.short_id} ({found.title}, {found.severity})")


@incident.command("list", help="List incidents, newest first.")
@click.option("--status", default=None)
@click.option("--open", "open_only", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
def incident_list(status: str | None, open_only: bool, as_json: bool, limit: int) -> None:
    from bot.presenter import incident_json
    from storage import incidents as store

    rt = runtime_or_exit()
    with rt.transaction() as session:
        filters = store.IncidentFilter(
            status=[status.upper()] if status else None, open_only=open_only
        )
        _total, rows = store.list_incidents(session, filters=filters, limit=limit)
        data = [incident_json(session, rt, row) for row in rows]
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
    from bot.presenter import incident_json
    from storage import incidents as store

    rt = runtime_or_exit()
    with rt.transaction() as session:
        found = store.get_incident(session, ref=ref)
        if found is None:
            fail(f"no incident {ref}", 1)
        data = incident_json(session, rt, found, detail=True)
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


def _status_command(name: str, status: str, help_text: str) -> None:
    @incident.command(name, help=help_text)
    @click.argument("ref")
    @click.option("--summary", default=None, help="Resolution summary (resolve).")
    @click.option("--wait", "wait_seconds", default=10.0, show_default=True)
    def command(ref: str, summary: str | None, wait_seconds: float) -> None:
        from bot.flows import lifecycle

        rt = runtime_or_exit()
        try:
            with rt.transaction() as session:
                found = lifecycle.get_or_404(session, ref)
                lifecycle.change_status(
                    session, rt, incident=found, status=status, actor=_cli_actor(), summary=summary
                )
                short_id = found.short_id
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
    from storage import auth

    rt = runtime_or_exit()
    with rt.transaction() as session:
        _row, clear = auth.create_token(session, name=name, role=role)
    click.echo(json.dumps({"token": clear, "name": name, "role": role}) if as_json else clear)


@token.command("revoke", help="Revoke tokens by id, name or prefix.")
@click.argument("ref")
def token_revoke(ref: str) -> None:
    from storage import auth

    rt = runtime_or_exit()
    with rt.transaction() as session:
        count = auth.revoke_token(session, ref=ref)
    if count == 0:
        fail(f"no active token matches {ref!r}", 1)
    click.echo(f"revoked {count} token(s)")


@main.group(help="API users (for POST /api/auth/token/).")
def user() -> None:
    pass


@user.command("create", help="Create a user; the password is read from the terminal or stdin.")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["viewer", "responder", "manager", "admin"])
)
def user_create(username: str, role: str) -> None:
    from storage import auth

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
        auth.create_user(session, username=username, password=password, role=role)
    click.echo(f"user {username} created with role {role}")


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
