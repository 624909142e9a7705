"""Logging set-up: plain text or JSON lines, with secrets redacted from every record."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

REDACTIONS = [
    (re.compile(r"xox[abposr]-[A-Za-z0-9-]+"), "xox?-***"),
    (re.compile(r"xapp-[A-Za-z0-9-]+"), "xapp-***"),
    (
        re.compile(
            r"(?i)(token|password|secret|routing_key|api_key|authorization)(['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(https://discord(?:app)?\.com/api/webhooks/\d+/)[A-Za-z0-9_-]+"), r"\1***"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[^-]*-----END [A-Z ]*PRIVATE KEY-----"),
        "***private key***",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ("incident", "provider", "recipient", "outbox_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s - %(message)s"))
    handler.set_name("imas")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "imas":  # ours from an earlier call; leave others alone
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in (
        "urllib3",
        "googleapiclient.discovery_cache",
        "apscheduler",
        "slack_sdk",
        "slack_bolt",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Alembic says "Context impl SQLiteImpl" on every command: quiet unless debugging.
    logging.getLogger("alembic").setLevel(
        logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    )
