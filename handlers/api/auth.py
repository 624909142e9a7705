"""API authentication and authorisation.

* ``Authorization: Token <t>`` or ``Authorization: Bearer <t>`` (``Basic`` with the token
  as password is accepted too, for senders that only do basic auth). Missing, malformed,
  unknown or revoked token -> 401 ``{"detail": ...}`` with ``WWW-Authenticate: Token``.
  Tokens are looked up by hash (``storage.auth.find_token``); ``last_used_at`` is written
  at most once a minute per token.
* ``require(role)``: dependency giving the ``Principal``; 403 when its role ranks below
  ``role`` (viewer < responder < manager < admin). A token created by a login carries its
  user's role; if the user's role was lowered since, the lower one applies, and a
  deactivated user's tokens stop working.
* ``login``: username/password -> a new token named ``login:<username>``; failed attempts
  are rate limited per (username, client address) in memory (``LoginLimiter``) and
  audited (``auth.login``, outcome ``denied``). The client address is the TCP peer;
  ``X-Forwarded-For`` replaces it only from ``IMAS_TRUSTED_PROXIES`` (uvicorn's
  ``forwarded_allow_ips``, set in ``handlers/server.py``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from bot.domain.actor import Actor
from bot.domain.enums import parse_access_role
from bot.domain.errors import AuthenticationError, InputError, PermissionDeniedError
from bot.runtime import Runtime
from storage import audit
from storage import auth as auth_store
from storage.models import ApiUser, Person

LAST_USED_RESOLUTION = timedelta(minutes=1)
NOT_PROVIDED = "Authentication credentials were not provided."
INVALID_TOKEN = "Invalid token."
LOGIN_FAILED = "Unable to log in with provided credentials."
_DUMMY_HASH = auth_store.hash_password("imas-timing-equaliser")

authorization_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    scheme_name="Token",
    description="`Token <token>` or `Bearer <token>` (create one with `imas token create` "
    "or `POST /api/auth/token/`).",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token (``kind`` "token"), or the shared webhook token
    (``kind`` "webhook")."""

    label: str
    role: str
    kind: str = "token"
    token_id: int | None = None
    user_id: int | None = None
    email: str | None = None
    slack_user_id: str | None = None

    @property
    def rank(self) -> int:
        return auth_store.role_rank(self.role)

    def at_least(self, role: str) -> bool:
        return self.rank >= auth_store.role_rank(role)

    def audit_actor(self, request_id: str | None = None) -> audit.AuditActor:
        """Who this principal is in the audit log: a user's token is the user
        (``api_user``, ref the username), a bare token is the token (``api_token``, ref its
        id), the shared webhook token is ``webhook``."""
        if self.kind == "webhook":
            return audit.AuditActor(
                label=self.label, kind="webhook", ref=None, door="webhook", request_id=request_id
            )
        if self.user_id is not None:
            return audit.AuditActor(
                label=self.label, kind="api_user", ref=self.label, door="api", request_id=request_id
            )
        return audit.AuditActor(
            label=self.label,
            kind="api_token",
            ref=None if self.token_id is None else str(self.token_id),
            door="api",
            request_id=request_id,
        )

    def actor(self, via: str | None = None, request_id: str | None = None) -> Actor:
        """The principal as the flows see it: its role is the token's (or its user's)."""
        ref = (
            f"user:{self.user_id}"
            if self.user_id is not None
            else f"token:{self.token_id}"
            if self.token_id is not None
            else f"{self.kind}:{self.label}"
        )
        return Actor(
            label=self.label,
            source="api",
            slack_user_id=self.slack_user_id,
            email=self.email,
            via=via,
            role=parse_access_role(self.role),
            ref=ref,
            request_id=request_id,
        )


def credentials(header: str | None) -> str:
    """The token in an ``Authorization`` header value. Raises AuthenticationError."""
    if not header or not header.strip():
        raise AuthenticationError(NOT_PROVIDED)
    parts = header.split()
    scheme = parts[0].lower()
    if scheme not in ("token", "bearer", "basic"):
        raise AuthenticationError(NOT_PROVIDED)
    if len(parts) != 2:
        raise AuthenticationError(
            "Invalid token header. No credentials provided."
            if len(parts) == 1
            else "Invalid token header. Token string should not contain spaces."
        )
    if scheme != "basic":
        return parts[1]
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError(
            "Invalid basic header. Credentials not correctly base64 encoded."
        ) from None
    _user, sep, password = decoded.partition(":")
    if not sep or not password:
        raise AuthenticationError("Invalid basic header. The password must be the token.")
    return password


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (any characters)."""
    return hmac.compare_digest(
        given.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


def authenticate_token(rt: Runtime, token: str) -> Principal:
    """The principal of an API token. Raises AuthenticationError (401)."""
    with rt.transaction() as session:
        row = auth_store.find_token(session, token=token)
        if row is None:
            raise AuthenticationError(INVALID_TOKEN)
        role, label, email, slack_user_id = row.role, f"token {row.name}", None, None
        if row.user_id is not None:
            user = session.get(ApiUser, row.user_id)
            if user is None or not user.is_active:
                raise AuthenticationError("User inactive or deleted.")
            label = user.username
            if auth_store.role_rank(user.role) < auth_store.role_rank(role):
                role = user.role
            if user.person_id is not None:
                person = session.get(Person, user.person_id)
                if person is not None:
                    email, slack_user_id = person.email, person.slack_user_id
        now = rt.clock()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            row.last_used_at = now
        return Principal(
            label=label,
            role=role,
            token_id=row.id,
            user_id=row.user_id,
            email=email,
            slack_user_id=slack_user_id,
        )


def check_role(principal: Principal, role: str) -> Principal:
    if not principal.at_least(role):
        raise PermissionDeniedError(
            f"This action needs the {role} role; this token has the {principal.role} role."
        )
    return principal


def require(role: str) -> Callable[..., Principal]:
    """Dependency: the authenticated principal, at least ``role`` (401/403 otherwise)."""

    def dependency(
        request: Request, authorization: str | None = Security(authorization_header)
    ) -> Principal:
        rt: Runtime = request.app.state.rt
        return check_role(authenticate_token(rt, credentials(authorization)), role)

    dependency.__name__ = f"require_{role}"
    return dependency


class LoginLimiter:
    """At most ``attempts`` failed logins per key within ``window`` seconds (in memory,
    per process). ``retry_after`` says how long a blocked key must wait."""

    def __init__(
        self,
        attempts: int = 5,
        window: float = 300.0,
        max_keys: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, key: tuple[str, str]) -> int | None:
        """Seconds to wait when ``key`` is blocked, else None."""
        with self._lock:
            now = self.clock()
            failures = self._recent(key, now)
            if len(failures) < self.attempts:
                return None
            return max(1, int(failures[0] + self.window - now + 0.999))

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            now = self.clock()
            self._recent(key, now)
            failures = self._failures.setdefault(key, deque())
            failures.append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


def login(
    rt: Runtime, limiter: LoginLimiter, *, username: str, password: str, client: str
) -> dict[str, Any]:
    """Exchange a username and password for a new API token (``{"token", "role",
    "username"}``), audited as ``token.create``. Wrong credentials -> InputError 400; the
    only row written is the ``auth.login`` audit row (outcome ``denied``, actor the username
    tried, never the password). Too many failures from this client for this username ->
    HTTPException 429 with Retry-After, before any database access (not audited)."""
    key = (username.lower(), client)
    wait = limiter.retry_after(key)
    if wait is not None:
        raise HTTPException(
            429,
            f"Too many failed login attempts. Retry in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    with rt.transaction() as session:
        user = auth_store.get_user(session, username=username)
        valid = auth_store.verify_password(password, user.password_hash if user else _DUMMY_HASH)
        who = audit.AuditActor(label=username, kind="api_user", ref=username, door="api")
        result: dict[str, Any] | None = None
        if user is None or not valid or not user.is_active:
            # Committed on purpose: the refusal itself is what the audit log must keep.
            if user is None:
                reason = "unknown user"
            elif not valid:
                reason = "wrong password"
            else:
                reason = "inactive user"
            audit.record(
                session,
                **who.fields(),
                action="auth.login",
                target_type="user",
                target=username,
                outcome="denied",
                detail=f"{reason} (client {client})",
            )
        else:
            row, clear = auth_store.create_token(
                session, name=f"login:{user.username}", role=user.role, user_id=user.id
            )
            audit.record(
                session,
                **who.fields(),
                action="token.create",
                target_type="token",
                target=row.id,
                changes={"name": [None, row.name], "role": [None, row.role]},
                detail=f"login (client {client})",
            )
            result = {"token": clear, "username": username, "role": user.role}
    if result is None:
        limiter.failed(key)
        raise InputError(LOGIN_FAILED, field="non_field_errors")
    limiter.succeeded(key)
    return result
