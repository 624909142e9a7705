"""Provider secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under ``IMAS_SECRET_KEY``.

Any string works as ``IMAS_SECRET_KEY`` (it is stretched with SHA-256 into a Fernet key).
On the embedded SQLite default without ``IMAS_SECRET_KEY``, a random key is generated once
into ``<database>.key`` (mode 0600, its folder 0700 when IMAS creates it) beside the database file, so a first run needs no
setup; a server database requires the setting (every replica needs the same key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from bot.domain.errors import ConfigError
from bot.settings import Settings


class SecretBox:
    def __init__(self, secret: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt_json(self, token: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken:
            raise ConfigError(
                "cannot decrypt provider configuration: IMAS_SECRET_KEY differs from the key "
                "used to store it"
            ) from None


def key_file_for(settings: Settings) -> Path:
    database = (
        settings.database_url.split(":///", 1)[-1] if ":///" in settings.database_url else "imas.db"
    )
    if not database or database == ":memory:":
        database = "imas.db"
    return Path(database + ".key")


def secret_box(settings: Settings) -> SecretBox:
    """The SecretBox for these settings, creating the SQLite key file on first use."""
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value())
    if not settings.is_sqlite:
        raise ConfigError("IMAS_SECRET_KEY is required with a server database")
    path = key_file_for(settings)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return SecretBox(path.read_text().strip())
