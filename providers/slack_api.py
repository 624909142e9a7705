"""A thin Slack Web API wrapper that speaks IMAS's error tree.

slack_sdk's own retry handlers are disabled: whether and when to retry is the outbox's
decision. Every call has a timeout. ``SlackApiError`` and network failures are mapped to
RetryableProviderError (429/ratelimited, Slack-side 5xx-like errors, timeouts) or
PermanentProviderError (everything else), with the seed's troubleshooting hints.
"""

from __future__ import annotations

import logging
import urllib.error
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.http import parse_retry_after

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
HINTS = {
    "channel_not_found": "invite the bot to the channel (/invite @IMAS) and check the channel id",
    "not_in_channel": "invite the bot to the channel (/invite @IMAS)",
    "invalid_auth": "the Slack token is invalid or expired: regenerate it in the Slack app "
    "(OAuth & Permissions) and update the bot token",
    "not_authed": "no Slack token was sent: set the bot token",
    "token_revoked": "the Slack token was revoked: reinstall the app and update the bot token",
    "account_inactive": "the Slack token belongs to a deleted user or app: reinstall the app",
    "missing_scope": "add the missing scope in the Slack app (see manifest.yml) and reinstall it",
    "is_archived": "the channel is archived: unarchive it or change the configured channel",
}


def slack_error(exc: SlackApiError, method: str) -> RetryableProviderError | PermanentProviderError:
    """Translate a SlackApiError from ``method`` into IMAS's error tree."""
    response = exc.response
    code = str(response.get("error") or f"HTTP {response.status_code}")
    if response.status_code == 429 or code in RETRYABLE_CODES or response.status_code >= 500:
        header = response.headers.get("Retry-After") or response.headers.get("retry-after")
        return RetryableProviderError(
            f"Slack {method} failed: {code}",
            code=code,
            retry_after=parse_retry_after(header if isinstance(header, str) else None),
        )
    hint = HINTS.get(code)
    if code == "missing_scope" and response.get("needed"):
        hint = f"add the scope {response.get('needed')} in the Slack app and reinstall it"
    return PermanentProviderError(f"Slack {method} failed: {code}", code=code, hint=hint)


class SlackApi:
    """Calls Slack Web API methods; raises ProviderError subclasses, never SlackApiError."""

    def __init__(self, *, token: str, base_url: str, timeout: float = 10.0) -> None:
        self.client = WebClient(token=token, base_url=base_url, timeout=int(max(1, timeout)))
        # Retries belong to the outbox (it honours Retry-After and records attempts).
        self.client.retry_handlers = []
        self._identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """``auth.test`` of this token (bot user id, team id), fetched once."""
        if self._identity is None:
            self._identity = self.call("auth.test")
        return self._identity

    def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call ``method`` (e.g. ``chat.postMessage``) and return the response data."""
        func = getattr(self.client, method.replace(".", "_"))
        try:
            response = func(**kwargs)
        except SlackApiError as exc:
            raise slack_error(exc, method) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            raise RetryableProviderError(
                f"Slack {method} failed: {type(exc).__name__}", code="connection_error"
            ) from None
        data = response.data
        return data if isinstance(data, dict) else {}
