"""Outbound HTTP for providers: one place for timeouts, error classification and the
address guard.

Every call has a connect and a read timeout. Responses are classified:

* 2xx -> returned;
* 429 -> RetryableProviderError with ``retry_after`` from ``Retry-After`` (seconds or an
  HTTP date) or a JSON ``retry_after`` (Discord);
* 5xx, timeouts, connection errors -> RetryableProviderError;
* other 4xx -> PermanentProviderError.

Every request goes through ``GuardedAdapter`` (``providers.guard``): the URL is parsed
strictly, the host resolved once, every address checked, and the connection made to that
checked address (TLS SNI, certificate check and the Host header keep the name). Redirects
are never followed: a 3xx with a ``Location`` is a permanent ``redirect_refused`` error
naming the hosts (a redirect would otherwise carry the request, and its credentials, past
the guard). Environment proxies are not used (a proxy would resolve the name again).
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.guard import (
    REDIRECT_CODES,
    AddressPolicy,
    Resolver,
    Target,
    TargetRefused,
    redirect_refused,
)

_PINNED: contextvars.ContextVar[Target | None] = contextvars.ContextVar(
    "imas_pinned_target", default=None
)


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


class GuardedAdapter(HTTPAdapter):
    """A requests transport adapter that asks the address guard before every request and
    connects to the address it checked (see the module docstring)."""

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        target = self.policy.resolve_url(request.url or "")
        request.headers["Host"] = target.endpoint.host_header
        token = _PINNED.set(target)
        try:
            response = super().send(request, stream, timeout, verify, cert, proxies=None)
        finally:
            _PINNED.reset(token)
        if response.status_code in REDIRECT_CODES and "location" in response.headers:
            response.close()
            raise redirect_refused(
                response.status_code, target.host, response.headers.get("location")
            )
        return response

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        params, kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params: dict[str, Any] = dict(params)
        pool_kwargs: dict[str, Any] = dict(kwargs)
        target = _PINNED.get()
        if target is None:  # only ``send`` above may open a connection
            raise ValueError("request not checked by the address guard")
        host_params["host"] = target.address
        if host_params.get("scheme") == "https":
            pool_kwargs["server_hostname"] = target.host
            pool_kwargs["assert_hostname"] = target.host
        return host_params, pool_kwargs


def guarded_session(
    policy: AddressPolicy, session: requests.Session | None = None
) -> requests.Session:
    """``session`` (or a new one) with every http(s) request going through the guard."""
    session = session if session is not None else requests.Session()
    session.trust_env = False  # no environment proxies (they resolve again) nor .netrc
    adapter = GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class HttpClient:
    """A guarded ``requests.Session`` with fixed timeouts and IMAS's error classification."""

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        allow_private: bool = False,
        allowed_hosts: tuple[str, ...] | list[str] = (),
        resolver: Resolver | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.policy = policy or AddressPolicy.build(
            allow_private=allow_private, allowed_hosts=allowed_hosts, resolver=resolver
        )
        self.session = guarded_session(self.policy)

    @property
    def allow_private(self) -> bool:
        return self.policy.allow_private

    def for_provider(
        self, *, allow_private: bool = False, allowed_hosts: tuple[str, ...] | list[str] = ()
    ) -> HttpClient:
        """This client, or one whose policy adds a provider's own allowances."""
        policy = self.policy.widened(allow_private=allow_private, allowed_hosts=allowed_hosts)
        if policy is self.policy:
            return self
        return HttpClient(
            connect_timeout=self.timeout[0], read_timeout=self.timeout[1], policy=policy
        )

    def check_target(self, url: str) -> Target:
        """The checked target of ``url`` (TargetRefused / dns_error otherwise)."""
        return self.policy.resolve_url(url)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request; return the 2xx response or raise a ProviderError."""
        # syntax, IP literals, localhost: refused before requests reads the URL; names are
        # resolved, checked and pinned by the adapter
        target = self.policy.check_url(url).host
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False
        try:
            response = self.session.request(method, url, **kwargs)
        except TargetRefused:
            raise
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
