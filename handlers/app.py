"""The HTTP application: one FastAPI app hosting Bolt at ``/slack/events``, the REST API
and alert webhooks under ``/api``, and ``/healthz``, ``/readyz``, ``/metrics``.

Bolt's ``App`` is synchronous: its dispatch runs in the thread pool (never on the event
loop), so a slow request never blocks the others.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from slack_bolt.request import BoltRequest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from bot import metrics
from bot.domain.errors import AuthenticationError
from bot.runtime import Runtime
from handlers.api import install as install_api
from handlers.pages import install as install_pages
from handlers.slack.app import (
    SlackBodyRefused,
    build_bolt_app,
    dedup_key,
    first_time,
    media_type,
    parse_slack_body,
    verify_signature,
)
from handlers.web import install as install_web

log = logging.getLogger(__name__)


class RequestTimer:
    """ASGI middleware recording ``imas_http_request_duration_seconds`` by route template.

    Plain ASGI rather than ``@app.middleware("http")`` (BaseHTTPMiddleware), whose extra
    task and stream per request costs more than a whole Slack ack.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.REQUEST_SECONDS.labels(scope["method"], route, str(status["code"])).observe(
                time.perf_counter() - started
            )


CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """ASGI middleware adding the security headers to every response (pages to come
    included): a Content-Security-Policy without inline script or style (a route may set
    its own, as ``/api/docs`` does), no framing, no sniffing, no referrer off-site, HSTS
    when ``IMAS_BASE_URL`` is https. A redirect's absolute ``Location`` (Starlette builds
    the trailing-slash redirects from the ``Host`` header) is rebuilt on ``IMAS_BASE_URL``.
    """

    def __init__(self, app: Any, *, base_url: str) -> None:
        self.app = app
        self.base_url = base_url.rstrip("/")
        self.headers: list[tuple[bytes, bytes]] = [
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if base_url.startswith("https://"):
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    def _location(self, value: bytes, request_host: str) -> bytes:
        target = urlsplit(value.decode("latin-1"))
        if not target.scheme and not target.netloc:
            return value  # relative: resolved against the address the client used
        if target.netloc.lower() != request_host.lower():
            return value  # elsewhere on purpose (an identity provider's sign-in page)
        rebuilt = self.base_url + (target.path or "/")
        if target.query:
            rebuilt += "?" + target.query
        return rebuilt.encode("latin-1")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_host = next(
            (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), ""
        )

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (
                        name,
                        self._location(value, request_host)
                        if name.lower() == b"location"
                        else value,
                    )
                    for name, value in message.get("headers", [])
                ]
                present = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CSP.encode()))
                headers += [h for h in self.headers if h[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)


class RefuseNul:
    """ASGI middleware: 400 for a NUL character in the path or the query string.

    PostgreSQL cannot hold NUL in text, so a ``%00`` reaching any query (a short id, a
    service name, a search) would be a DataError 500 there and a miss on SQLite; refused
    here once for every route, the same on both databases."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")
        ):
            response = JSONResponse(
                {"detail": "NUL characters are not allowed in URLs."}, status_code=400
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def docs_page(openapi_url: str) -> HTMLResponse:
    """Swagger UI (scripts from its CDN) with a CSP naming its one inline script by hash."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title="IMAS - API")
    text = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    )
    cdn = "https://cdn.jsdelivr.net"
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src {cdn} {hashes}; style-src {cdn}; "
        f"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="IMAS",
        version="0.1.0",
        openapi_url="/api/schema",
        docs_url=None,  # served below, with its own CSP
        redoc_url=None,
    )
    app.state.rt = rt

    bolt = None
    if rt.settings.slack_enabled:
        bolt, background = build_bolt_app(rt)
        app.state.slack_background = background

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        if bolt is None or rt.settings.slack_signing_secret is None:
            return JSONResponse(
                {"error": "Slack is disabled: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"},
                status_code=404,
            )
        rt.ack_gate.begin()  # background work waits while Slack requests are answered
        try:
            return await answer_slack(request)
        finally:
            rt.ack_gate.end()

    async def answer_slack(request: Request) -> Response:
        assert bolt is not None and rt.settings.slack_signing_secret is not None
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > rt.settings.max_body_bytes:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        body = await request.body()
        if len(body) > rt.settings.max_body_bytes:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verify_signature(rt.settings.slack_signing_secret.get_secret_value(), headers, body)
        except AuthenticationError as exc:
            metrics.SLACK_REJECTED.inc()
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            payload = parse_slack_body(headers, body)
        except SlackBodyRefused as exc:
            metrics.SLACK_REJECTED.inc()
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        key = dedup_key(headers, body, payload)
        if key is not None and not await run_in_threadpool(first_time, rt, key):
            return Response(status_code=200, headers={"X-Slack-No-Retry": "1"})
        bolt_request = BoltRequest(
            body=body.decode("utf-8"),
            query=request.url.query,
            # Bolt reads the body by this header: give it the type the body was parsed as
            headers={k: [v] for k, v in headers.items()} | {"content-type": [media_type(headers)]},
        )
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return Response(
            content=bolt_response.body,
            status_code=bolt_response.status,
            headers=bolt_response.first_headers_without_set_cookie(),
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "slack": rt.settings.slack_enabled,
            "google": rt.settings.google_enabled,
        }

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        try:
            with rt.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse(
                {"status": "unavailable", "database": type(exc).__name__}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return PlainTextResponse(metrics.render(rt), media_type=metrics.CONTENT_TYPE)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return docs_page("/api/schema")

    install_pages(app, rt)
    install_api(app, rt)
    install_web(app, rt)
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestTimer)
    app.add_middleware(SecurityHeaders, base_url=rt.settings.base_url)
    return app
