"""Reading request bodies safely: size limit first, then JSON, then (for the REST API)
a pydantic model. Nothing here touches the database.

* ``read_limited``: 413 when ``Content-Length`` or the bytes actually received exceed
  ``max_bytes`` (the stream is not read past the limit).
* ``decode_json``: strict JSON (no ``NaN``/``Infinity``, no out-of-range numbers, at most
  ``MAX_DEPTH`` levels) or ``InputError``; with ``strict_text`` strings holding NUL or
  unpaired surrogates (which the databases cannot store) are rejected, otherwise replaced
  by U+FFFD.
* ``json_body(Model)``: a FastAPI dependency doing all of the above and validating with
  ``Model``; declared *after* the auth dependency it runs only for authenticated callers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError

from bot.domain.errors import InputError
from bot.runtime import Runtime

MAX_DEPTH = 64
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
M = TypeVar("M", bound=BaseModel)


def utc_instant(value: datetime | None, field: str) -> datetime | None:
    """A query-string time as an aware UTC datetime (no offset means UTC). Times whose UTC
    equivalent falls outside years 1-9999 (``0001-01-01T00:00:01+00:03``) are InputError
    400, not an OverflowError further down."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError):
        raise InputError(f"{field}: out of range once converted to UTC.", field=field) from None


def too_large(max_bytes: int) -> HTTPException:
    return HTTPException(413, f"Request body too large (limit {max_bytes} bytes).")


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The raw body, or HTTPException(413) as soon as it is known to exceed ``max_bytes``."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise HTTPException(400, "Invalid Content-Length header.")
        if int(length) > max_bytes:
            raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise InputError(f"Invalid JSON: {name} is not allowed.", field="body")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"Invalid JSON: number {text[:20]} is out of range.", field="body")
    return value


def decode_json(raw: bytes, *, strict_text: bool) -> Any:
    """Decode ``raw`` as JSON (see the module docstring). Raises InputError."""
    if not raw.strip():
        raise InputError("The request body is empty; a JSON document is expected.", field="body")
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except InputError:
        raise
    except RecursionError:
        raise InputError("Invalid JSON: nested too deeply.", field="body") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError, int digits
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise InputError(f"Invalid JSON: {reason}{where}.", field="body") from None
    return _clean(value, strict=strict_text)


def _clean_text(text: str, strict: bool) -> str:
    if _BAD_TEXT.search(text) is None:
        return text
    if strict:
        raise InputError(
            "Strings must not contain NUL characters or unpaired UTF-16 surrogates.", field="body"
        )
    return _BAD_TEXT.sub("\ufffd", text)


def _clean(value: Any, *, strict: bool, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise InputError(f"Invalid JSON: nested deeper than {MAX_DEPTH} levels.", field="body")
    if isinstance(value, str):
        return _clean_text(value, strict)
    if isinstance(value, list):
        return [_clean(item, strict=strict, depth=depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            _clean_text(key, strict): _clean(item, strict=strict, depth=depth + 1)
            for key, item in value.items()
        }
    return value


def validation_message(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    """A one-line message naming the first bad field, and every error as field/message."""
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error.get("loc", ())) or "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        errors.append({"field": location, "message": message})
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return f"{first['field']}: {first['message']}", errors


class BodyValidationError(InputError):
    """A request body that decoded but does not fit the model (400, with every error)."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message, field=errors[0]["field"] if errors else None)
        self.errors = errors


def parse_model(model: type[M], value: Any) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        message, errors = validation_message(exc)
        raise BodyValidationError(message, errors) from None


def json_body(model: type[M], *, optional: bool = False) -> Callable[[Request], Awaitable[M]]:
    """Dependency: the request body as ``model`` (size-limited, strict JSON, validated).

    With ``optional``, an empty body means ``model()`` (all defaults).
    """

    async def dependency(request: Request) -> M:
        rt: Runtime = request.app.state.rt
        raw = await read_limited(request, rt.settings.max_body_bytes)
        if optional and not raw.strip():
            return model()
        return parse_model(model, decode_json(raw, strict_text=True))

    return dependency


def body_schema(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body of ``model`` (bodies are read by
    ``json_body``, so FastAPI does not see them)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
