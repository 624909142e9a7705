"""``imas doctor`` and ``/incident doctor``: the configuration checked against the live
services. Every check reports; none stops the others."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.crypto import key_file_for
from bot.domain.errors import ImasError, ProviderError
from bot.flows.oncall import gap_report
from bot.runtime import Runtime
from providers.base import IncidentView, Notification, Recipient
from providers.slack_api import SlackApi
from storage import catalog
from storage.db import exposed_files, sqlite_files


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # ok, but worth a look (does not fail ``imas doctor``)


def run_checks(rt: Runtime, progress: Callable[[str], None] | None = None) -> list[Check]:
    """Every check, in order; ``progress`` is told which one starts (``imas doctor``)."""
    step = progress or (lambda _label: None)
    results: list[Check] = []
    step("database")
    try:
        with rt.transaction() as session:
            teams = [(t.name, t.slack_channel_id) for t in catalog.list_teams(session)]
            providers = catalog.list_providers(session)
            api = rt.slack_api(session)
        results.append(Check("database", True, "reachable, migrations applied"))
    except Exception as exc:
        return [Check("database", False, f"{type(exc).__name__}: {exc}")]

    results.append(_base_url_check(rt))
    results.extend(oncall_checks(rt))
    if not rt.settings.slack_enabled:
        results.append(
            Check("slack app", True, "disabled (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET)")
        )
    if api is not None:
        step("slack token and channels")
        results.extend(_slack_checks(api, teams))
    for row in providers:
        name = f"provider {row.name} ({row.type})"
        step(name)
        if not row.is_active:
            results.append(Check(name, True, "inactive"))
            continue
        try:
            check = rt.provider(row).check()
            results.append(Check(name, check.ok, check.detail))
        except ProviderError as exc:
            results.append(Check(name, False, exc.describe()))
        except ImasError as exc:
            results.append(Check(name, False, str(exc)))
    results.extend(_files_at_rest(rt))
    lid = None
    step("google lid")
    try:
        lid = rt.lid()
    except Exception as exc:
        results.append(Check("google lid", False, f"cannot build the Google client: {exc}"))
    if lid is None and not rt.settings.google_enabled:
        results.append(
            Check("google lid", True, "not configured (no LID documents will be created)")
        )
    elif lid is not None:
        for item in lid.check():
            results.append(Check("google lid", bool(item.ok), str(item.detail)))
    return results


def _files_at_rest(rt: Runtime) -> list[Check]:
    """The SQLite database, its WAL/SHM files and the generated key file must be private
    to the IMAS user (they hold every incident and the key to the provider secrets)."""
    paths = sqlite_files(rt.settings.database_url)
    if not paths:
        return []
    if rt.settings.secret_key is None:
        paths.append(key_file_for(rt.settings))
    exposed = exposed_files(paths)
    if not exposed:
        return [Check("files at rest", True, "database and key files are private (0600)")]
    listed = ", ".join(f"{path} ({mode:04o})" for path, mode in exposed)
    return [
        Check(
            "files at rest",
            False,
            f"readable or writable by other users: {listed}; run chmod 600 on them",
        )
    ]


def _base_url_check(rt: Runtime) -> Check:
    """Links ("View incident", pagination) use IMAS_BASE_URL; a loopback address there
    opens for nobody else once Slack shows it."""
    settings = rt.settings
    origin = "from IMAS_HOST/IMAS_PORT" if settings.base_url_is_derived else "IMAS_BASE_URL"
    if settings.slack_enabled and settings.base_url_is_loopback:
        return Check(
            "base url",
            True,
            f"links use {settings.base_url} ({origin}), a loopback address that only this "
            "machine can open: set IMAS_BASE_URL to the address people reach IMAS at",
            warning=True,
        )
    return Check("base url", True, f"links use {settings.base_url} ({origin})")


def oncall_checks(rt: Runtime, days: int = 7) -> list[Check]:
    """A warning per team (or team-less schedule) with nobody on call at some point in the
    next ``days`` days (``bot.flows.oncall.gap_report``)."""
    now = rt.clock()
    with rt.reading() as session:
        report = gap_report(session, now, now + timedelta(days=days))
        has_teams = bool(catalog.list_teams(session))
    checks = []
    for name, holes in report:
        total = sum((hi - lo for lo, hi in holes), timedelta())
        first_lo, first_hi = holes[0]
        checks.append(
            Check(
                f"on-call {name}",
                True,
                f"nobody on call for {_span(total)} in the next {days} days "
                f"({len(holes)} gap(s), first {first_lo:%Y-%m-%d %H:%M}–"
                f"{first_hi:%Y-%m-%d %H:%M} UTC): add a layer, an override or current_on_call",
                warning=True,
            )
        )
    if not report and has_teams:
        checks.append(
            Check("on-call", True, f"someone is on call for every team, next {days} days")
        )
    return checks


def _span(delta: timedelta) -> str:
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    return f"{hours}h{rest // 60:02d}" if hours else f"{rest // 60} min"


def _slack_checks(api: SlackApi, teams: list[tuple[str, str | None]]) -> list[Check]:
    results = []
    try:
        auth = api.call("auth.test")
        results.append(
            Check("slack token", True, f"valid: bot {auth.get('user')} in {auth.get('team')}")
        )
    except ProviderError as exc:
        return [Check("slack token", False, exc.describe())]
    for team, channel in teams:
        if not channel:
            results.append(Check(f"team {team} channel", False, "no slack_channel_id configured"))
            continue
        try:
            info = api.call("conversations.info", channel=channel).get("channel") or {}
        except ProviderError as exc:
            results.append(Check(f"team {team} channel", False, f"{channel}: {exc.describe()}"))
            continue
        if info.get("is_member") is False:
            results.append(
                Check(
                    f"team {team} channel",
                    False,
                    f"the bot is not in {channel}: invite it with /invite @IMAS",
                )
            )
        else:
            results.append(Check(f"team {team} channel", True, f"bot is a member of {channel}"))
    return results


def send_test(rt: Runtime, name: str) -> tuple[bool, str]:
    """Send a ``test`` notification through provider ``name`` to its own destinations."""
    with rt.transaction() as session:
        row = catalog.get_provider(session, name=name)
        if row is None:
            return False, f"no provider named {name!r}"
        provider = rt.provider(row)
    view = IncidentView(
        id=0,
        short_id="INC-000000",
        title="IMAS test notification",
        description="Sent by imas provider test",
        severity="SEV4_LOW",
        status="TRIGGERED",
        service_name="imas",
        team_name="IMAS",
        lead_name=None,
        lead_email=None,
        incident_url=f"{rt.settings.base_url}/",
        created_at=datetime.now(UTC),
    )
    recipients = provider.default_recipients() or [Recipient("default")]
    lines, ok = [], True
    for recipient in recipients:
        try:
            result = provider.send(
                Notification("test", view),
                recipient,
                idempotency_key=f"test:{datetime.now(UTC).timestamp()}",
            )
            lines.append(f"ok: {result.detail}")
        except ProviderError as exc:
            ok = False
            lines.append(f"failed: {exc.describe()}")
    return ok, "\n".join(lines)
