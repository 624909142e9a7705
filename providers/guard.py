"""The address guard: the one place that decides whether IMAS may open an outbound
connection, and to which IP address.

Every outbound client asks it first: provider HTTP calls (``providers.http``: the
requests transport adapter), the Slack Web API client (``providers.slack_api``), Google
Docs/Drive and Google's token endpoint (``providers.google_docs``) and SMTP
(``providers.email``).

1. ``parse_url`` reads a URL strictly and refuses what parsers read differently:
   backslashes, user-info (``user@host``), whitespace and control characters, schemes
   other than http/https, an empty host, a malformed or out-of-range port, IPv6 zone ids,
   hosts that are not IDNA-encodable, and numeric hosts that are not a canonical
   dotted-quad (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``: some parsers read
   them as 127.0.0.1, others as names).
2. ``AddressPolicy.resolve_url`` / ``resolve_host`` resolve the host ONCE, check EVERY
   address it resolves to, and return a ``Target`` whose ``address`` is the checked IP:
   the connection must go there (the clients pin it: no second resolution, so DNS
   rebinding cannot swap the address between check and connect). A name that does not
   resolve is refused (``RetryableProviderError``, code ``dns_error``: DNS may recover).
3. ``AddressPolicy.check_url`` / ``check_host`` are the config-time checks: syntax, IP
   literals and ``localhost`` names, without DNS (names are checked at send time).

Refused addresses (``TargetRefused``, code ``private_target``):

* loopback, private (RFC 1918), carrier-grade NAT (100.64/10), unique-local (fc00::/7),
  site-local and other special-purpose non-global ranges - allowed by
  ``IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS=true``, a provider's ``allow_private_targets:
  true``, or the host listed in the provider's ``allowed_hosts``;
* link-local (169.254/16 - cloud metadata - and fe80::/10) - allowed only by an
  ``allowed_hosts`` entry naming the host;
* unspecified (0.0.0.0, ::, 0/8), multicast and reserved (240/4, broadcast) - never.

IPv6 forms that embed an IPv4 address (``::ffff:127.0.0.1``, IPv4-compatible ``::a.b.c.d``,
6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by the embedded address.

Errors name the host and the reason, never the URL's path or query (webhook URLs carry
their credential there).
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import re
import socket
import ssl
import unicodedata
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any
from urllib.parse import urlsplit

import idna

from bot.domain.errors import PermanentProviderError, RetryableProviderError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
PRIVATE_HINT = (
    "set IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS=true or allow_private_targets: true on the "
    "provider to allow it"
)
LISTED_HINT = "list the exact host in the provider's allowed_hosts to allow it"
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_CHARS = re.compile(r"[a-z0-9._-]+")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_DEC_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
_PORT = re.compile(r"[0-9]{1,5}")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_RESERVED_V4 = ipaddress.IPv4Network("240.0.0.0/4")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")


class TargetRefused(PermanentProviderError):
    """The guard refused an outbound address or URL (a permanent, never-retried error)."""


def _refuse(reason: str, *, code: str = "invalid_target", hint: str | None = None) -> TargetRefused:
    return TargetRefused(f"refused: {reason}", code=code, hint=hint)


# -- parsing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a URL (or an SMTP host) points: scheme, normalized host, port.

    ``host`` is ASCII (IDNA-encoded), lower-case, without brackets or a trailing dot;
    ``ip`` is set when the host is an IP literal.
    """

    scheme: str
    host: str
    port: int
    ip: IPAddress | None = None

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (``[v6]`` bracketed, port only when not default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return host
        return f"{host}:{self.port}"

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Target:
    """A checked endpoint and the IP address the connection must use."""

    endpoint: Endpoint
    address: str

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def port(self) -> int:
        return self.endpoint.port


def _bad_char(char: str) -> bool:
    code = ord(char)
    if code <= 0x20 or 0x7F <= code <= 0x9F:
        return True
    return unicodedata.category(char) in ("Zs", "Zl", "Zp", "Cc", "Cf")


def _inet_aton_reading(host: str) -> str:
    """How the C library's inet_aton reads ``host`` (`` (read as 127.0.0.1 ...)``), or ''."""
    try:
        return f" (read as {ipaddress.IPv4Address(socket.inet_aton(host))} by some parsers)"
    except OSError:
        return ""


def normalize_host(raw: str) -> tuple[str, IPAddress | None]:
    """``raw`` (a URL's host, IPv6 in brackets) as (ASCII host, IP literal or None).

    Raises TargetRefused for anything parsers could read differently.
    """
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise _refuse("malformed IPv6 literal")
        inner = raw[1:-1]
        if "%" in inner:
            raise _refuse("IPv6 zone identifiers are not allowed in a URL")
        try:
            ip6 = ipaddress.IPv6Address(inner)
        except ValueError:
            raise _refuse("malformed IPv6 literal") from None
        return str(ip6), ip6
    if not raw:
        raise _refuse("the URL has no host")
    host = raw
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise _refuse("the host is not a valid internationalized domain name") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise _refuse("the URL has no host")
    if not _HOST_CHARS.fullmatch(host):
        raise _refuse(f"the host {host[:80]!r} contains characters not allowed in a host name")
    labels = host.split(".")
    if len(host) > 253 or any(not label or len(label) > 63 for label in labels):
        raise _refuse(f"malformed host name {host[:80]!r}")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # WHATWG URL parsers read a host ending in a number as IPv4, inet_aton reads
        # 127.1, 0177.0.0.1, 0x7f.1 and 2130706433 as 127.0.0.1, ipaddress refuses them:
        # only the canonical dotted-quad means the same thing to everyone.
        if len(labels) == 4 and all(_DEC_OCTET.fullmatch(label) for label in labels):
            try:
                ip4 = ipaddress.IPv4Address(host)
            except ValueError:
                raise _refuse(f"{host} is not a valid IPv4 address") from None
            return host, ip4
        raise _refuse(
            f"{host} is not a canonical dotted-quad IPv4 address{_inet_aton_reading(host)}"
        )
    return host, None


def _port(text: str) -> int:
    if not _PORT.fullmatch(text):
        raise _refuse(
            "the port is empty or not a number" if not text else "the port is not a number"
        )
    port = int(text)
    if not 1 <= port <= 65535:
        raise _refuse(f"port {port} is out of range (1-65535)")
    return port


def split_authority(authority: str) -> tuple[str, str | None]:
    """``host[:port]`` / ``[v6][:port]`` -> (raw host, port text or None)."""
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise _refuse("malformed IPv6 literal")
        after = authority[close + 1 :]
        if after and not after.startswith(":"):
            raise _refuse("malformed host")
        return authority[: close + 1], (after[1:] if after else None)
    if authority.count(":") > 1:
        raise _refuse("IPv6 addresses must be written in brackets")
    host, sep, port = authority.partition(":")
    return host, (port if sep else None)


def parse_url(url: str) -> Endpoint:
    """The endpoint of an absolute http(s) URL; TargetRefused for anything else."""
    if not isinstance(url, str) or not url:
        raise _refuse("the URL is empty")
    for char in url:
        if _bad_char(char):
            kind = "whitespace" if char.isspace() else "a control or invisible character"
            raise _refuse(f"the URL contains {kind} ({ascii(char)})")
    if "\\" in url:
        raise _refuse("the URL contains a backslash, which parsers read differently")
    head, sep, rest = url.partition(":")
    if not sep or not _SCHEME.fullmatch(head):
        raise _refuse("not an absolute http:// or https:// URL")
    scheme = head.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse(f"scheme {scheme[:20]!r} is not allowed (only http and https)")
    if not rest.startswith("//"):
        raise _refuse("not an absolute http:// or https:// URL")
    rest = rest[2:]
    cuts = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    authority = rest[: min(cuts)] if cuts else rest
    if "@" in authority:
        raise _refuse("the URL carries user-info (user@host), which parsers read differently")
    raw_host, port_text = split_authority(authority)
    host, ip = normalize_host(raw_host)
    port = DEFAULT_PORTS[scheme] if port_text is None else _port(port_text)
    return Endpoint(scheme, host, port, ip)


def parse_host(host: str, port: int, *, scheme: str = "smtp") -> Endpoint:
    """The endpoint of a bare host name or IP (SMTP): TargetRefused when malformed."""
    if not isinstance(host, str) or not host:
        raise _refuse("the host is empty")
    if any(_bad_char(c) for c in host):
        raise _refuse("the host contains whitespace or a control character")
    if ":" in host and not host.startswith("["):
        if not _is_ipv6(host):
            raise _refuse(f"{host[:80]!r} is not a host name or IP address")
        raw = f"[{host}]"
    elif any(c in host for c in "\\@/?#"):
        raise _refuse(f"{host[:80]!r} is not a host name or IP address")
    else:
        raw = host
    name, ip = normalize_host(raw)
    if not 1 <= port <= 65535:
        raise _refuse(f"port {port} is out of range (1-65535)")
    return Endpoint(scheme, name, port, ip)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return "%" not in text


def parse_host_entry(entry: str) -> tuple[str, int | None]:
    """An ``allowed_hosts`` entry: ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    text = entry.strip()
    if not text or any(_bad_char(c) for c in text) or any(c in text for c in "\\@/?#"):
        raise _refuse(f"{entry[:80]!r} is not host or host:port")
    raw, port_text = split_authority(text)
    host, _ = normalize_host(raw)
    return host, (None if port_text is None else _port(port_text))


def display_host(url: str) -> str:
    """The host of ``url`` for messages (never the path or query); ``target`` if none."""
    try:
        return urlsplit(url).hostname or "target"
    except ValueError:
        return "target"


# -- judging addresses -------------------------------------------------------------------

NEVER, LINK_LOCAL, PRIVATE = "never", "link-local", "private"


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64)."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if int(addr) >> 32 == 0 and int(addr) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(addr))
    return None


def classify(addr: IPAddress) -> tuple[str, str] | None:
    """(kind, what it is) for a non-public address, None for a public one.

    kind: ``never`` (unspecified, multicast, reserved), ``link-local`` (allowed only by an
    allowed_hosts entry) or ``private`` (allowed by the allow-private switches too).
    """
    if isinstance(addr, ipaddress.IPv6Address):
        inner = embedded_ipv4(addr)
        if inner is not None:
            verdict = classify(inner)
            if verdict is None:
                return None
            return verdict[0], f"an IPv6 address embedding {inner}, {verdict[1]}"
    if addr.is_unspecified:
        return NEVER, "an unspecified address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _THIS_NETWORK:
        return NEVER, "in 0.0.0.0/8 ('this network')"
    if addr.is_multicast:
        return NEVER, "a multicast address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _RESERVED_V4:
        return NEVER, "a reserved address"
    if addr.is_loopback:
        return PRIVATE, "a loopback address"
    if addr.is_link_local:
        return LINK_LOCAL, "a link-local address (cloud metadata services live there)"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return PRIVATE, "a carrier-grade NAT (shared) address"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr in _UNIQUE_LOCAL:
            return PRIVATE, "a unique-local address"
        if addr.is_site_local:
            return PRIVATE, "a site-local address"
    if addr.is_private:
        return PRIVATE, "a private address"
    if addr.is_reserved:
        return NEVER, "a reserved address"
    if not addr.is_global:
        return PRIVATE, "a special-purpose (non-global) address"
    return None


def _ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _is_localhost_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``), in its order."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class AddressPolicy:
    """What may be called: see the module docstring. Immutable; ``widened`` adds a
    provider's own allowances to the global ones."""

    allow_private: bool = False
    allowed_hosts: frozenset[tuple[str, int | None]] = frozenset()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def build(
        cls,
        *,
        allow_private: bool = False,
        allowed_hosts: Iterable[str] = (),
        resolver: Resolver | None = None,
    ) -> AddressPolicy:
        return cls(
            allow_private=allow_private,
            allowed_hosts=frozenset(parse_host_entry(e) for e in allowed_hosts),
            resolver=resolver or system_resolver,
        )

    def widened(
        self, *, allow_private: bool = False, allowed_hosts: Iterable[str] = ()
    ) -> AddressPolicy:
        """This policy plus a provider's ``allow_private_targets`` / ``allowed_hosts``."""
        extra = frozenset(parse_host_entry(e) for e in allowed_hosts)
        if (allow_private and not self.allow_private) or not extra <= self.allowed_hosts:
            return replace(
                self,
                allow_private=self.allow_private or allow_private,
                allowed_hosts=self.allowed_hosts | extra,
            )
        return self

    def is_listed(self, endpoint: Endpoint) -> bool:
        return (endpoint.host, None) in self.allowed_hosts or (
            endpoint.host,
            endpoint.port,
        ) in self.allowed_hosts

    # config time (no DNS)

    def check_url(self, url: str) -> Endpoint:
        """Syntax, IP literals and localhost names; TargetRefused when refused."""
        endpoint = parse_url(url)
        self._check_static(endpoint)
        return endpoint

    def check_host(self, host: str, port: int) -> Endpoint:
        endpoint = parse_host(host, port)
        self._check_static(endpoint)
        return endpoint

    # send time (resolve once, check all, pin)

    def resolve_url(self, url: str) -> Target:
        """The checked target of ``url``; connect to ``Target.address`` only."""
        return self.resolve(parse_url(url))

    def resolve_host(self, host: str, port: int) -> Target:
        return self.resolve(parse_host(host, port))

    def resolve(self, endpoint: Endpoint) -> Target:
        self._check_static(endpoint)
        if endpoint.ip is not None:
            return Target(endpoint, str(endpoint.ip))
        try:
            answers = [str(a) for a in self.resolver(endpoint.host, endpoint.port)]
        except (OSError, UnicodeError) as exc:
            detail = getattr(exc, "strerror", None) or type(exc).__name__
            raise RetryableProviderError(
                f"refused: cannot resolve {endpoint.host} ({detail})", code="dns_error"
            ) from None
        if not answers:
            raise RetryableProviderError(
                f"refused: cannot resolve {endpoint.host} (no address)", code="dns_error"
            )
        for answer in answers:
            try:
                addr = _ip(answer)
            except ValueError:
                raise _refuse(f"{endpoint.host} resolved to something that is not an IP") from None
            self._judge(endpoint, addr, f"{endpoint.host} resolves to {addr}, ")
        return Target(endpoint, answers[0])

    def _check_static(self, endpoint: Endpoint) -> None:
        if endpoint.ip is not None:
            self._judge(endpoint, endpoint.ip, f"{endpoint.ip} is ")
        elif _is_localhost_name(endpoint.host):
            # RFC 6761: always loopback, judged without asking DNS
            self._judge(
                endpoint,
                ipaddress.IPv4Address("127.0.0.1"),
                f"{endpoint.host} is ",
                "a loopback name",
            )

    def _judge(
        self, endpoint: Endpoint, addr: IPAddress, prefix: str, name: str | None = None
    ) -> None:
        verdict = classify(addr)
        if verdict is None:
            return
        kind, what = verdict
        what = name or what
        listed = self.is_listed(endpoint)
        if kind == NEVER:
            raise _refuse(f"{prefix}{what}", code="private_target")
        if listed or (kind == PRIVATE and self.allow_private):
            return
        hint = PRIVATE_HINT if kind == PRIVATE else LISTED_HINT
        raise _refuse(f"{prefix}{what}", code="private_target", hint=hint)


def redirect_refused(status: int, source: str, location: str | None) -> TargetRefused:
    """The error for a 3xx answer: IMAS never follows redirects (it names hosts only)."""
    to = display_host(location or "")
    return _refuse(
        f"{source} answered HTTP {status} redirecting to {to}; redirects are never followed",
        code="redirect_refused",
        hint="configure the final URL directly",
    )


# -- urllib (slack_sdk) ----------------------------------------------------------------


def _pinned(cls: type[http.client.HTTPConnection], address: str) -> Any:
    """An ``http.client`` connection class that connects to ``address`` whatever its host
    (the Host header, TLS SNI and certificate check keep the original host name)."""

    def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        conn = cls(host, **kwargs)

        def connect(
            addr: tuple[str, int], timeout: float | None = None, source: Any = None
        ) -> socket.socket:
            return socket.create_connection((address, addr[1]), timeout, source)

        conn._create_connection = connect  # type: ignore[attr-defined]
        return conn

    return make


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        _same_target(req, self.target)
        return self.do_open(_pinned(http.client.HTTPConnection, self.target.address), req)


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    """One verifying context for every pinned HTTPS call (building one loads the CA
    store: too slow to repeat per call)."""
    return ssl.create_default_context()


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        super().__init__()
        self.target = target
        self.tls_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        _same_target(req, self.target)
        return self.do_open(
            _pinned(http.client.HTTPSConnection, self.target.address),
            req,
            context=self.tls_context or _default_tls_context(),
        )


def _same_target(req: urllib.request.Request, target: Target) -> None:
    endpoint = parse_url(req.full_url)
    if (endpoint.host, endpoint.port) != (target.host, target.port):
        raise _refuse(f"{endpoint.host} was not checked by the address guard")


class _RefuseRedirects(urllib.request.BaseHandler):
    """Turns every 3xx into TargetRefused: nothing (least of all a token) follows it."""

    handler_order = 400  # before HTTPDefaultErrorHandler

    def __init__(self, target: Target) -> None:
        self.target = target

    def http_error_redirect(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any
    ) -> None:
        fp.close()
        raise redirect_refused(code, self.target.host, headers.get("Location"))

    http_error_301 = http_error_302 = http_error_303 = http_error_redirect
    http_error_307 = http_error_308 = http_error_redirect


def pinned_opener(
    target: Target, context: ssl.SSLContext | None = None
) -> urllib.request.OpenerDirector:
    """A urllib opener that connects only to ``target.address``, never follows a redirect
    and uses no proxy (a proxy would resolve the name again)."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        _PinnedHTTPHandler(target),
        _PinnedHTTPSHandler(target, context),
        _RefuseRedirects(target),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


__all__ = [
    "AddressPolicy",
    "Endpoint",
    "Target",
    "TargetRefused",
    "classify",
    "display_host",
    "parse_host",
    "parse_host_entry",
    "parse_url",
    "pinned_opener",
    "redirect_refused",
    "system_resolver",
]
