"""``POST /api/v1/webhooks/{alertmanager|grafana|datadog|sentry|custom}/`` (SPEC §7).

Order of checks, each answered before the next step runs (nothing is written until the
last one):

1. unknown source -> 404;
2. ``Content-Length`` over ``IMAS_MAX_BODY_BYTES`` -> 413;
3. authentication, before the body is parsed: an ``Authorization`` header (``Bearer``/
   ``Token``/``Basic`` with the token as password) holding the shared ``IMAS_WEBHOOK_TOKEN``
   (constant-time comparison) or an API token of role responder or above (401 / 403);
   for Sentry, which cannot send headers of our choosing, the ``Sentry-Hook-Signature``
   HMAC-SHA256 of the raw body keyed with ``IMAS_SENTRY_CLIENT_SECRET`` instead (the body
   is read, size-limited, but not parsed before the signature is checked);
4. the body, read up to the limit (413), decoded as JSON (400: invalid JSON, NaN, too
   deep; NUL and unpaired surrogates are replaced by U+FFFD), parsed by the source's
   parser (400 with the parser's message, e.g. ``alerts[2].status: ...``);
5. ``bot.flows.alerts.ingest`` in one transaction -> 202 with ``{"received", "stored",
   "deduplicated", "created_incidents", "resolved_incidents", "reopened_incidents",
   "incidents", "unrouted"}``.
   The database being unreachable gives 503 with ``Retry-After`` (Alertmanager and most
   senders retry only on 5xx), through the application's error handlers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from bot import metrics
from bot.domain.alerts import SOURCES, ParsedAlert
from bot.domain.errors import AuthenticationError, ImasError, NotFoundError
from bot.flows.alerts import ingest
from bot.runtime import Runtime
from handlers.api.auth import Principal, authenticate_token, check_role, credentials, same_secret
from handlers.api.body import decode_json, read_limited, too_large
from handlers.api.schemas import ErrorOut, WebhookOut
from handlers.webhooks.parsers import parse, verify_sentry_signature

WEBHOOK_PRINCIPAL = Principal(label="webhook token", role="responder", kind="webhook")


def authenticate_webhook(rt: Runtime, header: str) -> Principal:
    """The sender behind an ``Authorization`` header: the shared webhook token, or an API
    token of role responder or above. Raises AuthenticationError / PermissionDeniedError."""
    token = credentials(header)
    shared = rt.settings.webhook_token
    if shared is not None and same_secret(token, shared.get_secret_value()):
        return WEBHOOK_PRINCIPAL
    return check_role(authenticate_token(rt, token), "responder")


def check_sentry_signature(rt: Runtime, body: bytes, signature: str | None) -> None:
    secret = rt.settings.sentry_client_secret
    if secret is None:
        raise AuthenticationError(
            "Sentry signature cannot be checked: IMAS_SENTRY_CLIENT_SECRET is not set "
            "(or send an Authorization header)."
        )
    if not verify_sentry_signature(body, signature, secret.get_secret_value()):
        raise AuthenticationError("Invalid Sentry-Hook-Signature.")


def decode_and_parse(source: str, raw: bytes, headers: dict[str, str]) -> list[ParsedAlert]:
    """The body as alerts (CPU work: run off the event loop). Raises InputError."""
    return parse(source, decode_json(raw, strict_text=False), headers)


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/api/v1/webhooks/{source}/",
        tags=["webhooks"],
        status_code=202,
        response_model=WebhookOut,
        responses={code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 503)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": "The tool's own webhook payload",
                        }
                    }
                },
            }
        },
    )
    async def receive_alerts(source: str, request: Request) -> Any:
        """Receive alerts from a monitoring tool (``source``: alertmanager, grafana,
        datadog, sentry or custom) and open/resolve incidents per the alert rules."""
        if source not in SOURCES:
            raise NotFoundError(
                f"Unknown alert source {source[:40]!r}; expected one of {', '.join(SOURCES)}."
            )
        limit = rt.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise too_large(limit)
        try:
            authorization = request.headers.get("authorization")
            signature = request.headers.get("sentry-hook-signature")
            if authorization:
                await run_in_threadpool(authenticate_webhook, rt, authorization)
            elif source != "sentry" or signature is None:
                raise AuthenticationError("Authentication credentials were not provided.")
            raw = await read_limited(request, limit)
            if not authorization:
                check_sentry_signature(rt, raw, signature)
            alerts = await run_in_threadpool(decode_and_parse, source, raw, dict(request.headers))
        except (ImasError, HTTPException):
            metrics.ALERTS_RECEIVED.labels(source, "rejected").inc()
            raise
        try:
            result = await run_in_threadpool(ingest, rt, source=source, alerts=alerts)
        except OperationalError:
            metrics.ALERTS_RECEIVED.labels(source, "unavailable").inc(len(alerts))
            raise
        metrics.ALERTS_RECEIVED.labels(source, "stored").inc(result.stored)
        metrics.ALERTS_RECEIVED.labels(source, "deduplicated").inc(result.deduplicated)
        return result.as_json()

    return router
