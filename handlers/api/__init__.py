"""The REST API and the alert webhooks, mounted on the application by ``install``.

Error contract (every answer is JSON ``{"detail": message}``, plus ``errors`` for body
validation):

====================================================  ======================================
``InputError`` (and body/query validation)            400 (``NotFoundError`` 404,
                                                      ``ConflictError`` 409)
``AuthenticationError``                               401 with ``WWW-Authenticate: Token``
``PermissionDeniedError``                             403
body over ``IMAS_MAX_BODY_BYTES``                     413
too many failed logins                                429 with ``Retry-After``
method not allowed on an existing path                405 with ``Allow`` (every method)
database unreachable (``OperationalError`` ...)       503 with ``Retry-After``
====================================================  ======================================

A rejected request writes nothing: the checks run before any transaction, and a flow
error rolls its transaction back. (One exception: a failed login writes its ``auth.login``
audit row, outcome ``denied``.) Error messages never include secrets (tokens are not
echoed; database errors are reported by class name only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bot.domain.errors import AuthenticationError, InputError, PermissionDeniedError
from bot.runtime import Runtime
from handlers.api.body import BodyValidationError

log = logging.getLogger(__name__)
UNAVAILABLE_RETRY_AFTER = "10"


def _input_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    content: dict[str, object] = {"detail": exc.message}
    if isinstance(exc, BodyValidationError):
        content["errors"] = exc.errors
    elif exc.field:
        content["field"] = exc.field
    return JSONResponse(content, status_code=exc.status_code)


def _authentication_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Token"}
    )


def _permission_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        location = [
            str(part)
            for part in error.get("loc", ())
            if part not in ("query", "path", "header", "body")
        ]
        errors.append(
            {"field": ".".join(location) or "request", "message": str(error.get("msg", "invalid"))}
        )
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    return JSONResponse(
        {"detail": f"{first['field']}: {first['message']}", "errors": errors}, status_code=400
    )


def _flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route, with the routers added by ``include_router`` opened (FastAPI keeps
    them as one wrapper route each; IMAS includes them without a prefix)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat_routes(inner.routes)
        else:
            yield route


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors as usual, except that a 405 lists in ``Allow`` the methods
    of every route on that path (FastAPI has one route per method: Starlette named only
    the first one it met)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed: set[str] = set()
        for route in _flat_routes(request.app.router.routes):
            methods = getattr(route, "methods", None)
            if methods and route.matches(request.scope)[0] != Match.NONE:  # same path
                allowed |= set(methods)
        if allowed:
            exc = StarletteHTTPException(
                405, exc.detail, headers={"Allow": ", ".join(sorted(allowed))}
            )
    return await http_exception_handler(request, exc)


def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        {"detail": "The database is unavailable; retry later."},
        status_code=503,
        headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
    )


def install(app: FastAPI, rt: Runtime) -> None:
    """Add the REST routes, the webhook routes and their error handlers to ``app``."""
    from handlers.api.audit import build_router as build_audit_router
    from handlers.api.oncall import build_router as build_oncall_router
    from handlers.api.routes import build_router
    from handlers.webhooks.routes import build_router as build_webhook_router

    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(AuthenticationError, _authentication_error)
    app.add_exception_handler(PermissionDeniedError, _permission_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError):
        app.add_exception_handler(error, _unavailable)
    app.include_router(build_router(rt))
    app.include_router(build_audit_router(rt))
    app.include_router(build_oncall_router(rt))
    app.include_router(build_webhook_router(rt))
