"""A thin Slack Web API wrapper that speaks IMAS's error tree.

slack_sdk's own retry handlers are disabled: whether and when to retry is the outbox's
decision. Every call has a timeout. ``SlackApiError`` and network failures are mapped to
RetryableProviderError (429/ratelimited, Slack-side 5xx-like errors, timeouts) or
PermanentProviderError (everything else), with the seed's troubleshooting hints.

``GuardedWebClient`` is the ``WebClient`` every IMAS Slack call uses (this wrapper, the
Bolt app and, through ``middleware``, the clients Bolt hands to listeners): each call
goes through the address guard (``providers.guard``) - the API URL (``SLACK_API_URL`` or
a SLACK provider's ``endpoint``) resolved once, every address checked, the connection
pinned to the checked address - and a redirect is never followed (slack_sdk's urllib
would follow it carrying ``Authorization: Bearer <token>``): it raises ``TargetRefused``.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.guard import AddressPolicy, pinned_opener
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


class GuardedWebClient(WebClient):  # type: ignore[misc]
    """A slack_sdk ``WebClient`` whose every HTTP call goes through the address guard, to
    the checked address only, never following a redirect, never through a proxy."""

    def __init__(self, *args: Any, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def _perform_urllib_http_request_internal(
        self, url: str, req: urllib.request.Request
    ) -> dict[str, Any]:
        # Replaces slack_sdk's own (urlopen with the default redirect handler and the
        # environment's proxy); the response handling below mirrors it.
        target = self.policy.resolve_url(url)
        resp = pinned_opener(target, self.ssl).open(req, timeout=self.timeout)
        if resp.headers.get_content_type() == "application/gzip":
            return {"status": resp.code, "headers": resp.headers, "body": resp.read()}
        charset = resp.headers.get_content_charset() or "utf-8"
        body: str = resp.read().decode(charset)
        return {"status": resp.code, "headers": resp.headers, "body": body}

    def clone(self, client: WebClient) -> GuardedWebClient:
        """A guarded copy of ``client`` (its token, team, base URL and settings)."""
        return GuardedWebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            headers=client.headers,
            team_id=(client.default_params or {}).get("team_id"),
            logger=client.logger,
            retry_handlers=list(client.retry_handlers or []),
            policy=self.policy,
        )

    def middleware(self) -> Callable[..., Any]:
        """A Bolt global middleware swapping the per-request ``WebClient`` Bolt builds for
        each listener (a plain one, copied from the app's) for a guarded copy."""

        def guard_listener_client(context: Any, next: Callable[[], Any]) -> Any:
            client = context.client
            if client is not None and not isinstance(client, GuardedWebClient):
                context["client"] = self.clone(client)
            return next()

        return guard_listener_client


class SlackApi:
    """Calls Slack Web API methods; raises ProviderError subclasses, never SlackApiError."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        timeout: float = 10.0,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.client = GuardedWebClient(
            token=token,
            base_url=base_url,
            timeout=int(max(1, timeout)),
            policy=policy or AddressPolicy(),
        )
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
