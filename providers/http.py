"""Outbound HTTP for providers: one place for timeouts, error classification and the
private-address guard.

Every call has a connect and a read timeout. Responses are classified:

* 2xx -> returned;
* 429 -> RetryableProviderError with ``retry_after`` from ``Retry-After`` (seconds or an
  HTTP date) or a JSON ``retry_after`` (Discord);
* 5xx, timeouts, connection errors -> RetryableProviderError;
* other 4xx -> PermanentProviderError.

Redirects are not followed (a 3xx is permanent): a redirect to a private address would
otherwise bypass the guard.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from bot.domain.errors import PermanentProviderError, RetryableProviderError


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_private_host(host: str) -> bool:
    """True when ``host`` is, or resolves to, a loopback/private/link-local address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved:
            return True
    return False


class HttpClient:
    """A ``requests.Session`` with fixed timeouts and IMAS's error classification."""

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        allow_private: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.allow_private = allow_private
        self.session = session or requests.Session()

    def check_target(self, url: str) -> None:
        """Raise PermanentProviderError when ``url`` is not an allowed target."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentProviderError(f"invalid target URL scheme or host: {parts.scheme}://")
        if not self.allow_private and is_private_host(parts.hostname):
            raise PermanentProviderError(
                f"target host {parts.hostname} is a private or loopback address",
                code="private_target",
                hint="set IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS=true to allow internal targets",
            )

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request; return the 2xx response or raise a ProviderError."""
        self.check_target(url)
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        target = urlsplit(url).hostname or "target"
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout:
            raise RetryableProviderError(f"timeout calling {target}", code="timeout") from None
        except requests.ConnectionError:
            raise RetryableProviderError(
                f"connection to {target} failed", code="connection_error"
            ) from None
        except requests.RequestException as exc:
            raise PermanentProviderError(
                f"request to {target} failed: {type(exc).__name__}"
            ) from None
        return self.classify(response, target)

    @staticmethod
    def classify(response: requests.Response, target: str) -> requests.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        snippet = (response.text or "")[:300]
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                try:
                    body = response.json()
                    if isinstance(body, dict) and "retry_after" in body:
                        retry_after = float(body["retry_after"])
                except (ValueError, TypeError):
                    pass
            raise RetryableProviderError(
                f"{target} answered HTTP 429 (rate limited)",
                code="HTTP 429",
                retry_after=retry_after,
            )
        if status >= 500:
            raise RetryableProviderError(
                f"{target} answered HTTP {status}: {snippet}",
                code=f"HTTP {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        hint = None
        if status in (401, 403):
            hint = "check the provider's credentials (token, key, webhook URL)"
        elif status == 404:
            hint = "check the provider's URL / target id"
        raise PermanentProviderError(
            f"{target} answered HTTP {status}: {snippet}", code=f"HTTP {status}", hint=hint
        )
