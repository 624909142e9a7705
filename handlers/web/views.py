"""The dashboard's pages and forms. Each form handler checks the CSRF token, builds the
signed-in user's ``Actor`` and calls ONE flow (``bot.flows.declare`` or
``bot.flows.incidents``), exactly as the Slack and REST doors do; a flow's typed error is
shown on the page (``NotFoundError`` as a 404 page, so a private incident's existence does
not leak)."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import yaml
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot import analytics, config_file, doctor, kpis
from bot.access import Action
from bot.domain.enums import (
    INCIDENT_ROLES,
    SEVERITIES,
    STATUSES,
    AccessRole,
    Status,
    parse_severity,
    parse_status,
)
from bot.domain.errors import ImasError, InputError, NotFoundError
from bot.flows import incidents
from bot.flows.declare import DeclareInput, declare, validate
from bot.runtime import Runtime
from handlers.api.auth import LoginLimiter
from handlers.web import charts
from handlers.web import oidc as oidc_flow
from handlers.web.auth import (
    CSRF_FIELD,
    TooManyAttempts,
    WebUser,
    csrf_token,
    csrf_valid,
    record_sign_in,
)
from handlers.web.auth import load_user as load_web_user
from handlers.web.auth import sign_in as sign_in_user
from handlers.web.proxy import TrustedProxy
from handlers.web.render import PAGE_HEADERS, render
from storage import catalog
from storage.incidents import IncidentFilter

PREFIX = "/dashboard"
PAGE_SIZE = 25
CSV_MAX_ROWS = 10000
CSV_COLUMNS = (
    "short_id",
    "title",
    "severity",
    "status",
    "service",
    "team",
    "lead",
    "private",
    "created_at",
    "acknowledged_at",
    "mitigated_at",
    "resolved_at",
)


class Refused(Exception):  # noqa: N818 - a refused form post, answered with 403
    pass


def safe_next(value: object) -> str:
    """Where to go after signing in: a dashboard path on this site, never elsewhere."""
    text = str(value or "")
    parts = urlsplit(text)
    if (
        parts.scheme
        or parts.netloc
        or not text.startswith(PREFIX + "/")
        or "\\" in text
        or text.startswith("//")
    ):
        return PREFIX + "/"
    return text


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def _csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _date(value: str, field: str, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{field}: use a date like 2026-01-31.", field=field) from None
    moment = datetime.combine(day, time.min, tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


def parse_filters(query: dict[str, str]) -> tuple[IncidentFilter, dict[str, str]]:
    """The list filters from the query string, and the values to echo in the form.
    Raises InputError naming the bad field."""
    shown = {
        key: query.get(key, "").strip()[:200]
        for key in ("status", "severity", "service", "team", "from", "to", "q")
    }
    filters = IncidentFilter()
    if shown["status"] == "open":
        filters.open_only = True
    elif shown["status"]:
        filters.status = [parse_status(shown["status"], field="status").value]
    if shown["severity"]:
        filters.severity = [parse_severity(shown["severity"], field="severity").value]
    filters.service = shown["service"] or None
    filters.team = shown["team"] or None
    filters.search = shown["q"] or None
    filters.since = _date(shown["from"], "from")
    filters.until = _date(shown["to"], "to", end=True)
    return filters, shown


def install(app: FastAPI, rt: Runtime) -> None:
    """Add the dashboard's routes to ``app`` (the session middleware is added by
    ``handlers.web.install``)."""
    router = APIRouter(include_in_schema=False)
    limiter = LoginLimiter()
    oidc_config = oidc_flow.config_of(rt.settings)
    oidc = oidc_flow.OidcClient(rt, oidc_config) if oidc_config else None
    role_map, default_role = oidc_flow.role_mapping(rt.settings)
    proxy = TrustedProxy.from_settings(rt.settings, role_map, default_role)

    async def current_user(request: Request) -> WebUser | None:
        if proxy is not None:
            vouched = proxy.identity(
                request.client.host if request.client else None,
                {k.lower(): v for k, v in request.headers.items()},
            )
            if vouched is not None:
                return WebUser(
                    username=vouched.username,
                    role=vouched.role,
                    email=vouched.email,
                    ref=f"user:proxy:{vouched.username}",
                )
        federated = request.session.get("oidc")
        if isinstance(federated, dict) and oidc is not None:
            try:
                return WebUser(
                    username=str(federated["username"]),
                    role=AccessRole(federated["role"]),
                    email=federated.get("email"),
                    ref=f"user:oidc:{federated['sub']}",
                )
            except (KeyError, ValueError):
                request.session.clear()
                return None
        username = request.session.get("user")
        if not isinstance(username, str):
            return None
        user = await run_in_threadpool(load_web_user, rt, username)
        if user is None:
            request.session.pop("user", None)
        return user

    def context(request: Request, user: WebUser | None, **extra: Any) -> dict[str, Any]:
        flash = request.session.pop("flash", None)
        return {
            "user": user,
            "csrf": csrf_token(request.session),
            "csrf_field": CSRF_FIELD,
            "flash": flash,
            "path": request.url.path,
            "prefix": PREFIX,
            "sso_label": oidc_config.label if oidc_config else None,
            **extra,
        }

    def flash(request: Request, message: str, kind: str = "ok") -> None:
        request.session["flash"] = {"kind": kind, "message": message[:500]}

    def to_sign_in(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _redirect(f"{PREFIX}/login/?next={quote(target, safe='')}")

    async def posted(request: Request) -> FormData:
        """The form of a POST, after the CSRF and same-origin checks (Refused otherwise)."""
        origin = request.headers.get("origin")
        if origin and origin != "null":
            host = request.headers.get("host", "")
            if urlsplit(origin).netloc != host:
                raise Refused("cross-site form post")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > rt.settings.max_body_bytes:
            raise Refused("form too large")
        form = await request.form()
        if not csrf_valid(request.session, form.get(CSRF_FIELD)):
            raise Refused("missing or wrong CSRF token")
        return form

    def refused(request: Request, user: WebUser | None) -> Response:
        return render(
            "error.html",
            context(
                request,
                user,
                title="Form refused",
                message="This form expired or did not come from this page. "
                "Reload the page and try again.",
            ),
            status_code=403,
        )

    def not_found(request: Request, user: WebUser | None, message: str) -> Response:
        return render(
            "error.html",
            context(request, user, title="Not found", message=message),
            status_code=404,
        )

    # -- entry, sign-in, sign-out -----------------------------------------------------

    @router.get("/")
    def root() -> Response:
        return _redirect(PREFIX + "/")

    @router.get(PREFIX)
    def dashboard_bare() -> Response:
        return _redirect(PREFIX + "/")

    @router.get(PREFIX + "/login/")
    async def login_page(request: Request) -> Response:
        user = await current_user(request)
        target = safe_next(request.query_params.get("next"))
        if user is not None:
            return _redirect(target)
        return render("login.html", context(request, None, next=target, username=""))

    @router.post(PREFIX + "/login/")
    async def login_submit(request: Request) -> Response:
        try:
            form = await posted(request)
        except Refused:
            return refused(request, None)
        username = str(form.get("username") or "").strip()[:150]
        password = str(form.get("password") or "")[:1024]
        target = safe_next(form.get("next"))
        client = request.client.host if request.client else "unknown"
        error, status, headers = None, 200, {}
        if not username or not password:
            error, status = "Enter your username and password.", 400
        else:
            try:
                user = await run_in_threadpool(
                    lambda: sign_in_user(
                        rt, limiter, username=username, password=password, client=client
                    )
                )
            except TooManyAttempts as exc:
                error, status, headers = str(exc), 429, {"Retry-After": str(exc.wait)}
            else:
                if user is None:
                    error, status = "Wrong username or password.", 400
        if error is not None:
            response = render(
                "login.html",
                context(request, None, next=target, username=username, error=error),
                status_code=status,
            )
            response.headers.update(headers)
            return response
        request.session.clear()  # a new session (and CSRF token) for the signed-in user
        request.session["user"] = username
        csrf_token(request.session)
        return _redirect(target)

    def sign_in_error(request: Request, message: str, status: int) -> Response:
        return render(
            "login.html",
            context(request, None, next=PREFIX + "/", username="", error=message),
            status_code=status,
        )

    @router.get(PREFIX + "/login/oidc/")
    async def oidc_start(request: Request) -> Response:
        if oidc is None:
            return not_found(request, None, "Single sign-on is not configured.")
        try:
            url, flow = await run_in_threadpool(oidc.start)
        except (oidc_flow.SignInRefused, ImasError) as exc:
            return sign_in_error(request, f"Single sign-on is unavailable: {exc}", 502)
        request.session["oidc_flow"] = {
            **flow,
            "next": safe_next(request.query_params.get("next")),
        }
        return _redirect(url)

    @router.get(PREFIX + "/login/oidc/callback/")
    async def oidc_callback(request: Request) -> Response:
        if oidc is None:
            return not_found(request, None, "Single sign-on is not configured.")
        flow = request.session.pop("oidc_flow", None)
        params = request.query_params
        if params.get("error"):
            reason = str(params.get("error_description") or params.get("error"))[:200]
            return sign_in_error(request, f"The identity provider refused: {reason}", 400)
        client = request.client.host if request.client else "unknown"
        try:
            identity = await run_in_threadpool(
                lambda: oidc.finish(
                    flow if isinstance(flow, dict) else {},
                    query=request.url.query,
                    state=str(params.get("state") or ""),
                )
            )
        except (oidc_flow.SignInRefused, ImasError) as exc:
            reason = str(exc)
            await run_in_threadpool(
                lambda: record_sign_in(rt, "(oidc)", ok=False, detail=f"{reason} (client {client})")
            )
            return sign_in_error(request, reason, 400)
        await run_in_threadpool(
            lambda: record_sign_in(
                rt,
                identity.username,
                ok=True,
                detail=f"single sign-on as {identity.role.value} (client {client})",
            )
        )
        request.session.clear()
        request.session["oidc"] = {
            "username": identity.username,
            "role": identity.role.value,
            "email": identity.email,
            "sub": identity.subject,
        }
        csrf_token(request.session)
        return _redirect(str(flow.get("next") if isinstance(flow, dict) else PREFIX + "/"))

    @router.post(PREFIX + "/logout/")
    async def logout(request: Request) -> Response:
        try:
            await posted(request)
        except Refused:
            return refused(request, await current_user(request))
        request.session.clear()
        flash(request, "You are signed out.")
        return _redirect(PREFIX + "/login/")

    # -- home --------------------------------------------------------------------------

    def home_data(user: WebUser) -> dict[str, Any]:
        actor = user.actor()
        now = rt.clock()
        active, recent = incidents.list_incidents(
            rt, actor=actor, filters=IncidentFilter(open_only=True), limit=0
        )
        critical, _ = incidents.list_incidents(
            rt,
            actor=actor,
            filters=IncidentFilter(open_only=True, severity=["SEV1_CRITICAL"]),
            limit=0,
        )
        _total, recent = incidents.list_incidents(
            rt, actor=actor, filters=IncidentFilter(), limit=10
        )
        with rt.reading() as session:
            month = kpis.compute(session, since=now - timedelta(days=30))
        split = month["by_severity"]
        biggest = max(split.values()) if split else 0
        return {
            "active": active,
            "critical": critical,
            "resolved_30d": month["by_status"].get("RESOLVED", 0),
            "total_30d": month["total"],
            "mttr": month["mttr"]["mean"],
            "mtta": month["mtta"]["mean"],
            "split": [
                (
                    sev,
                    split.get(sev, 0),
                    0 if not biggest else round(100 * split.get(sev, 0) / biggest),
                )
                for sev in SEVERITIES
            ],
            "recent": recent,
        }

    @router.get(PREFIX + "/")
    async def home(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return to_sign_in(request)
        data = await run_in_threadpool(home_data, user)
        return render("home.html", context(request, user, nav="home", **data))

    # -- list and CSV ------------------------------------------------------------------

    def choices() -> dict[str, Any]:
        with rt.reading() as session:
            return {
                "services": [s.name for s in catalog.list_services(session)],
                "teams": [t.name for t in catalog.list_teams(session)],
                "scopes": [s.name for s in catalog.list_scopes(session)],
            }

    @router.get(PREFIX + "/incidents/")
    async def incident_list(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return to_sign_in(request)
        query = dict(request.query_params)
        options = await run_in_threadpool(choices)
        try:
            filters, shown = parse_filters(query)
        except InputError as exc:
            return render(
                "list.html",
                context(
                    request,
                    user,
                    nav="list",
                    error=exc.message,
                    rows=[],
                    count=0,
                    shown={},
                    page=1,
                    pages=1,
                    links={},
                    statuses=STATUSES,
                    severities=SEVERITIES,
                    **options,
                ),
                status_code=400,
            )
        actor = user.actor()
        if query.get("format") == "csv":
            rows = await run_in_threadpool(_all_rows, rt, actor, filters)
            return _csv_response(rows)
        raw_page = query.get("page", "1")
        page = int(raw_page) if raw_page.isdigit() and 0 < len(raw_page) < 7 else 1
        page = max(page, 1)
        count, rows = await run_in_threadpool(
            lambda: incidents.list_incidents(
                rt, actor=actor, filters=filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
            )
        )
        pages = max(1, math.ceil(count / PAGE_SIZE))
        kept = {k: v for k, v in shown.items() if v}
        links = {
            "prev": f"?{urlencode({**kept, 'page': page - 1})}" if page > 1 else None,
            "next": f"?{urlencode({**kept, 'page': page + 1})}" if page < pages else None,
            "csv": f"?{urlencode({**kept, 'format': 'csv'})}",
        }
        return render(
            "list.html",
            context(
                request,
                user,
                nav="list",
                rows=rows,
                count=count,
                shown=shown,
                page=page,
                pages=pages,
                links=links,
                statuses=STATUSES,
                severities=SEVERITIES,
                **options,
            ),
        )

    # -- live refresh (polled by static/app.js; a reload without JavaScript) ------------

    def _version(payload: object) -> JSONResponse:
        digest = hashlib.sha256(repr(payload).encode()).hexdigest()[:16]
        return JSONResponse({"version": digest}, headers={"Cache-Control": "no-store"})

    @router.get(PREFIX + "/live/")
    async def list_version(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return JSONResponse({"detail": "Sign in first."}, status_code=401)
        try:
            filters, _shown = parse_filters(dict(request.query_params))
        except InputError as exc:
            return JSONResponse({"detail": exc.message}, status_code=400)
        count, rows = await run_in_threadpool(
            lambda: incidents.list_incidents(
                rt, actor=user.actor(), filters=filters, limit=PAGE_SIZE
            )
        )
        return _version(
            (count, [(r["short_id"], r["status"], r["severity"], r["title"]) for r in rows])
        )

    @router.get(PREFIX + "/incidents/{ref}/version/")
    async def incident_version(request: Request, ref: str) -> Response:
        user = await current_user(request)
        if user is None:
            return JSONResponse({"detail": "Sign in first."}, status_code=401)
        try:
            data = await run_in_threadpool(
                lambda: incidents.show(rt, actor=user.actor(), ref=ref, detail=True)
            )
        except ImasError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return _version(
            (
                data["status"],
                data["severity"],
                data["roles"],
                data["lid_url"],
                data["war_room_url"],
                len(data["timeline"]),
                [(d["kind"], d["state"], d["attempts"]) for d in data["deliveries"]],
            )
        )

    # -- analytics ---------------------------------------------------------------------

    def analytics_data(query: dict[str, str]) -> dict[str, Any]:
        raw = query.get("days", "30")
        days = int(raw) if raw in {str(p) for p in analytics.PERIODS} else 30
        severity = query.get("severity", "").strip()
        if severity:
            severity = parse_severity(severity, field="severity").value
        service = query.get("service", "").strip()[:200] or None
        team = query.get("team", "").strip()[:200] or None
        until = rt.clock()
        since = until - timedelta(days=days)
        with rt.reading() as session:
            found = analytics.rows(
                session, since=since, until=until, service=service, team=team, severity=severity
            )
        data = analytics.summarise(found, since=since, until=until)
        hours = [
            (p["mtta"]["p50"], p["mtta"]["p90"], p["mttr"]["p50"], p["mttr"]["p90"])
            for p in data["trend"]
        ]
        labels = [p["period"] for p in data["trend"]]

        def minutes(value: float | None) -> float | None:
            return None if value is None else value / 60

        charts_ = {
            "per_day": charts.bar_chart(
                [(d.isoformat(), float(n)) for d, n in data["per_day"]],
                label=f"Incidents per day, last {days} days",
                unit="incidents",
            ),
            "mtta": charts.line_chart(
                labels,
                [
                    ("p50", [minutes(h[0]) for h in hours]),
                    ("p90", [minutes(h[1]) for h in hours]),
                ],
                label="Time to acknowledge, p50 and p90, in minutes",
                unit="min",
            ),
            "mttr": charts.line_chart(
                labels,
                [
                    ("p50", [minutes(h[2]) for h in hours]),
                    ("p90", [minutes(h[3]) for h in hours]),
                ],
                label="Time to resolve, p50 and p90, in minutes",
                unit="min",
            ),
            "heatmap": charts.heatmap(
                data["heatmap"], analytics.WEEKDAYS, label="Incidents by weekday and hour (UTC)"
            ),
            "by_service": charts.bar_chart(
                [(g["name"], float(g["count"])) for g in data["by_service"][:12]],
                label="Incidents by service",
                unit="incidents",
            ),
        }
        return {
            "days": days,
            "periods": analytics.PERIODS,
            "weekdays": analytics.WEEKDAYS,
            "shown": {"service": service or "", "team": team or "", "severity": severity},
            "data": data,
            "charts": charts_,
            **choices(),
        }

    @router.get(PREFIX + "/analytics/")
    async def analytics_page(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return to_sign_in(request)
        try:
            data = await run_in_threadpool(analytics_data, dict(request.query_params))
        except InputError as exc:
            return render(
                "error.html",
                context(request, user, title="Bad filter", message=exc.message),
                status_code=400,
            )
        return render(
            "analytics.html",
            context(request, user, nav="analytics", severities=SEVERITIES, **data),
        )

    # -- configuration (read-only) -----------------------------------------------------

    def config_data(run_checks: bool) -> dict[str, Any]:
        with rt.reading() as session:
            exported = config_file.export(session, rt)
        document = yaml.safe_load(exported) or {}
        checks = doctor.run_checks(rt) if run_checks else None
        return {"document": document, "exported": exported, "checks": checks}

    @router.get(PREFIX + "/config/")
    async def config_page(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return to_sign_in(request)
        if not user.is_manager:
            return render(
                "error.html",
                context(
                    request,
                    user,
                    nav="config",
                    title="Configuration",
                    message="The configuration is shown to managers and admins.",
                ),
                status_code=403,
            )
        data = await run_in_threadpool(config_data, request.query_params.get("check") == "1")
        return render("config.html", context(request, user, nav="config", **data))

    # -- create ------------------------------------------------------------------------

    def create_context(request: Request, user: WebUser, **extra: Any) -> dict[str, Any]:
        return context(request, user, nav="create", severities=SEVERITIES, **choices(), **extra)

    @router.get(PREFIX + "/incidents/create/")
    async def create_page(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return to_sign_in(request)
        ctx = await run_in_threadpool(
            lambda: create_context(request, user, values={"severity": "SEV3_MEDIUM"}, errors={})
        )
        return render("create.html", ctx)

    @router.post(PREFIX + "/incidents/create/")
    async def create_submit(request: Request) -> Response:
        user = await current_user(request)
        try:
            form = await posted(request)
        except Refused:
            return refused(request, user)
        if user is None:
            return to_sign_in(request)
        data = DeclareInput(
            title=str(form.get("title") or ""),
            description=str(form.get("description") or ""),
            service=str(form.get("service") or "").strip(),
            severity=str(form.get("severity") or "").strip(),
            lead=str(form.get("lead") or "").strip() or None,
            private=form.get("private") == "on",
            scopes=[str(s) for s in form.getlist("scopes") if str(s).strip()],
        )
        values = {**vars(data), "lead": data.lead or ""}

        errors = validate(data)  # every field at once, before the flow
        short_id: str | None = None
        if not errors:
            try:
                incident, _created = await run_in_threadpool(
                    lambda: declare(rt, data=data, actor=user.actor())
                )
                short_id = incident.short_id
            except InputError as exc:
                errors = {exc.field or "form": exc.message}
            except ImasError as exc:
                errors = {"form": str(exc)}
        if short_id is None:
            ctx = await run_in_threadpool(
                lambda: create_context(request, user, values=values, errors=errors)
            )
            status = 403 if not user.can_declare else 400
            return render("create.html", ctx, status_code=status)
        flash(request, f"Incident {short_id} declared.")
        return _redirect(f"{PREFIX}/incidents/{short_id}/")

    # -- detail and acts ---------------------------------------------------------------

    def detail_data(user: WebUser, ref: str) -> dict[str, Any]:
        actor = user.actor()
        data = incidents.show(rt, actor=actor, ref=ref, detail=True)
        may = incidents.allowed(rt, actor=actor, ref=ref)
        with rt.reading() as session:
            service = catalog.get_service(session, ref=data["service_id"])
            runbook = service.runbook_url if service else None
        status = data["status"]
        can = {
            "acknowledge": Action.ACKNOWLEDGE in may and status == Status.TRIGGERED,
            "mitigate": Action.MITIGATE in may
            and status in (Status.TRIGGERED, Status.ACKNOWLEDGED),
            "resolve": Action.RESOLVE in may and status != Status.RESOLVED,
            "reopen": Action.REOPEN in may and status == Status.RESOLVED,
            "severity": Action.SEVERITY in may,
            "note": Action.NOTE in may,
            "role": Action.ROLE in may,
            "page": Action.PAGE in may,
            "repair": Action.REPAIR in may
            and any(d["state"] in ("dead", "failed") for d in data["deliveries"]),
        }
        can["any"] = any(can.values())
        now = rt.clock()
        end = data["resolved_at"] or now.isoformat()
        return {"incident": data, "can": can, "runbook_url": runbook, "open_until": end}

    @router.get(PREFIX + "/incidents/{ref}/")
    async def incident_detail(request: Request, ref: str) -> Response:
        user = await current_user(request)
        if user is None:
            return to_sign_in(request)
        try:
            data = await run_in_threadpool(detail_data, user, ref)
        except NotFoundError as exc:
            return not_found(request, user, exc.message)
        except ImasError as exc:
            return render(
                "error.html",
                context(request, user, title="Not available", message=str(exc)),
                status_code=exc.status_code if hasattr(exc, "status_code") else 400,
            )
        return render(
            "detail.html",
            context(
                request,
                user,
                nav="list",
                severities=SEVERITIES,
                incident_roles=INCIDENT_ROLES,
                **data,
            ),
        )

    def act_route(name: str, run: Callable[[WebUser, str, FormData], str]) -> None:
        async def act(request: Request, ref: str) -> Response:
            user = await current_user(request)
            try:
                form = await posted(request)
            except Refused:
                return refused(request, user)
            if user is None:
                return to_sign_in(request)
            try:
                message = await run_in_threadpool(run, user, ref, form)
            except NotFoundError as exc:
                return not_found(request, user, exc.message)
            except ImasError as exc:
                flash(request, str(exc), "error")
            else:
                flash(request, message)
            return _redirect(f"{PREFIX}/incidents/{quote(ref, safe='')}/")

        act.__name__ = f"incident_{name}"
        router.add_api_route(f"{PREFIX}/incidents/{{ref}}/{name}/", act, methods=["POST"])

    def text_field(form: FormData, name: str, limit: int = 10000) -> str:
        return str(form.get(name) or "").strip()[:limit]

    act_route(
        "status",
        lambda user, ref, form: (
            incidents.set_status(
                rt,
                actor=user.actor(),
                ref=ref,
                status=text_field(form, "status", 40),
                summary=text_field(form, "summary") or None,
                note=text_field(form, "note") or None,
            ).message
        ),
    )
    act_route(
        "severity",
        lambda user, ref, form: (
            incidents.change_severity(
                rt, actor=user.actor(), ref=ref, severity=text_field(form, "severity", 40)
            ).message
        ),
    )
    act_route(
        "note",
        lambda user, ref, form: (
            incidents.add_note(
                rt, actor=user.actor(), ref=ref, text=_required(form, "text")
            ).message
        ),
    )
    act_route(
        "role",
        lambda user, ref, form: (
            incidents.assign_role(
                rt,
                actor=user.actor(),
                ref=ref,
                role=text_field(form, "role", 40),
                person=_required(form, "person", 320),
            ).message
        ),
    )
    act_route(
        "page",
        lambda user, ref, form: (
            incidents.page(
                rt,
                actor=user.actor(),
                ref=ref,
                target=_required(form, "target", 320),
                reason=text_field(form, "reason", 500) or None,
            ).message
        ),
    )
    act_route(
        "repair",
        lambda user, ref, form: incidents.repair(rt, actor=user.actor(), ref=ref).message,
    )

    app.include_router(router)


def _required(form: FormData, name: str, limit: int = 10000) -> str:
    value = str(form.get(name) or "").strip()[:limit]
    if not value:
        raise InputError(f"{name.capitalize()} is required.", field=name)
    return value


def _all_rows(rt: Runtime, actor: Any, filters: IncidentFilter) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while len(rows) < CSV_MAX_ROWS:
        _count, batch = incidents.list_incidents(
            rt, actor=actor, filters=filters, offset=len(rows), limit=500
        )
        rows.extend(batch)
        if len(batch) < 500:
            break
    return rows[:CSV_MAX_ROWS]


def _csv_response(rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in CSV_COLUMNS])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            **PAGE_HEADERS,
            "Content-Disposition": f'attachment; filename="incidents-{stamp}.csv"',
        },
    )
