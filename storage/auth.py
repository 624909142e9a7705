"""API users and tokens. Tokens are stored as SHA-256 hashes (they are random, so a fast
hash is enough); passwords with scrypt (memory-hard KDF from the standard library)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.enums import ACCESS_ROLES
from storage.models import ApiToken, ApiUser, utcnow

ROLES = ACCESS_ROLES
TOKEN_PREFIX = "imas_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, *, name: str, role: str, user_id: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the clear token (shown once, never stored)."""
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name, role=role, token_hash=token_hash(clear), prefix=clear[:10], user_id=user_id
    )
    session.add(row)
    session.flush()
    return row, clear


def find_token(session: Session, *, token: str) -> ApiToken | None:
    """The active token matching ``token``, or None (revoked tokens do not match)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def revoke_tokens(session: Session, *, ref: str) -> list[ApiToken]:
    """Revoke the active tokens whose id, name or prefix is ``ref``; returns them."""
    query = select(ApiToken).where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.id)
    rows = [r for r in session.scalars(query) if ref in (str(r.id), r.name, r.prefix)]
    for row in rows:
        row.revoked_at = utcnow()
    return rows


def revoke_token(session: Session, *, ref: str) -> int:
    """Revoke tokens by id, name or prefix; returns how many were revoked."""
    return len(revoke_tokens(session, ref=ref))


def get_user(session: Session, *, username: str) -> ApiUser | None:
    return session.scalar(select(ApiUser).where(ApiUser.username == username))


def create_user(session: Session, *, username: str, password: str, role: str) -> ApiUser:
    user = ApiUser(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user
