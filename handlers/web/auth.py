"""Dashboard sign-in: local users (``imas user create``), a signed session cookie, CSRF
tokens.

* The session is Starlette's ``SessionMiddleware``: the cookie holds a JSON payload signed
  with ``itsdangerous`` (HMAC-SHA1 via ``TimestampSigner``, expiry checked on every
  request). It is HttpOnly, ``SameSite=Lax``, scoped to ``/dashboard``, and ``Secure``
  when ``IMAS_BASE_URL`` is https. The signing key is derived from ``IMAS_SECRET_KEY``
  (HMAC-SHA256 with a purpose label, so the Fernet key for provider secrets is never
  used as is); on SQLite without the setting it comes from the same ``<database>.key``
  file as the Fernet key.
* The cookie only carries the username: every request reloads the user, so a
  deactivated user is signed out at once and a lowered role applies at once.
* CSRF: a random token in the (signed) session, sent back as the ``csrf_token`` field of
  every form (synchronizer-token pattern); a POST whose token is missing or wrong is
  refused with 403 before anything else happens. A cross-site ``Origin`` header is
  refused too.
* Failed sign-ins are rate limited per (username, client address) with the API's
  ``LoginLimiter`` and audited (``auth.login``, outcome ``denied``); a success is audited
  as ``auth.login`` through the ``web`` door.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from bot.crypto import key_file_for, secret_box
from bot.domain.actor import Actor
from bot.domain.enums import AccessRole, parse_access_role
from bot.runtime import Runtime
from bot.settings import Settings
from handlers.api.auth import _DUMMY_HASH, LoginLimiter
from storage import audit
from storage import auth as auth_store
from storage.models import Person

SESSION_COOKIE = "imas_session"
SESSION_MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf_token"
SIGN_IN_FAILED = "Wrong username or password."


def session_secret(settings: Settings) -> str:
    """The session-signing key: derived from ``IMAS_SECRET_KEY`` (or the SQLite key file)."""
    if settings.secret_key is not None:
        base = settings.secret_key.get_secret_value()
    else:
        secret_box(settings)  # creates the key file on first use (SQLite only)
        base = key_file_for(settings).read_text().strip()
    return hmac.new(base.encode(), b"imas-web-session-v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebUser:
    """The signed-in user, reloaded from the database on every request."""

    username: str
    role: AccessRole
    email: str | None = None
    slack_user_id: str | None = None
    ref: str | None = None  # default: user:<username>

    def actor(self, via: str = "dashboard") -> Actor:
        return Actor(
            label=self.username,
            source="web",
            slack_user_id=self.slack_user_id,
            email=self.email,
            via=via,
            role=self.role,
            ref=self.ref or f"user:{self.username}",
        )

    @property
    def can_declare(self) -> bool:
        return self.role.rank >= AccessRole.RESPONDER.rank

    @property
    def is_manager(self) -> bool:
        return self.role.rank >= AccessRole.MANAGER.rank


def load_user(rt: Runtime, username: str) -> WebUser | None:
    """The active user ``username`` (None when unknown or deactivated)."""
    with rt.reading() as session:
        user = auth_store.get_user(session, username=username)
        if user is None or not user.is_active:
            return None
        email = slack_user_id = None
        if user.person_id is not None:
            person = session.get(Person, user.person_id)
            if person is not None:
                email, slack_user_id = person.email, person.slack_user_id
        return WebUser(
            username=user.username,
            role=parse_access_role(user.role),
            email=email,
            slack_user_id=slack_user_id,
        )


class TooManyAttempts(Exception):  # noqa: N818 - a refusal, carried to the page
    def __init__(self, wait: int) -> None:
        super().__init__(f"Too many failed sign-ins. Retry in {wait} seconds.")
        self.wait = wait


def sign_in(
    rt: Runtime, limiter: LoginLimiter, *, username: str, password: str, client: str
) -> WebUser | None:
    """The user when ``username``/``password`` are right (None otherwise, audited).
    Raises TooManyAttempts before any database access when the client is blocked."""
    key = (username.lower(), client)
    wait = limiter.retry_after(key)
    if wait is not None:
        raise TooManyAttempts(wait)
    who = audit.AuditActor(label=username[:150], kind="api_user", ref=username[:150], door="web")
    with rt.transaction() as session:
        user = auth_store.get_user(session, username=username)
        valid = auth_store.verify_password(password, user.password_hash if user else _DUMMY_HASH)
        ok = user is not None and valid and user.is_active
        if user is None:
            reason = "unknown user"
        elif not valid:
            reason = "wrong password"
        else:
            reason = "inactive user" if not user.is_active else "dashboard sign-in"
        audit.record(
            session,
            **who.fields(),
            action="auth.login",
            target_type="user",
            target=username[:150],
            outcome="ok" if ok else "denied",
            detail=f"{reason} (client {client})",
        )
    if not ok:
        limiter.failed(key)
        return None
    limiter.succeeded(key)
    return load_user(rt, username)


def csrf_token(session: dict[str, Any]) -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_valid(session: dict[str, Any], given: object) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def record_sign_in(rt: Runtime, username: str, *, ok: bool, detail: str) -> None:
    """The ``auth.login`` audit row of a single sign-on attempt (door ``web``)."""
    who = audit.AuditActor(label=username[:150], kind="api_user", ref=username[:150], door="web")
    with rt.transaction() as session:
        audit.record(
            session,
            **who.fields(),
            action="auth.login",
            target_type="user",
            target=username[:150],
            outcome="ok" if ok else "denied",
            detail=detail[:500],
        )
