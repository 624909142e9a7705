"""Dashboard sign-in by a trusted authenticating proxy (oauth2-proxy, Pomerium, an
ingress with ``auth_request``…): the proxy authenticates the person and passes who they
are in headers (``IMAS_PROXY_USER_HEADER``, default ``X-Forwarded-Email``; groups in
``IMAS_PROXY_GROUPS_HEADER``, default ``X-Forwarded-Groups``, comma separated).

The headers are believed only when the TCP peer is in ``IMAS_TRUSTED_PROXIES`` (IP
addresses or networks); from anyone else they are ignored, so a client cannot claim an
identity by sending them. Groups map to a role with the same ``IMAS_OIDC_ROLE_MAP`` /
``IMAS_OIDC_DEFAULT_ROLE`` as single sign-on; no mapped role, no entry.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bot.domain.enums import AccessRole
from bot.domain.errors import ConfigError
from bot.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyIdentity:
    username: str
    email: str | None
    role: AccessRole


@dataclass(frozen=True)
class TrustedProxy:
    networks: tuple[Network, ...]
    user_header: str
    groups_header: str
    role_map: dict[str, AccessRole]
    default_role: AccessRole | None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        role_map: dict[str, AccessRole],
        default_role: AccessRole | None,
    ) -> TrustedProxy | None:
        """None when ``IMAS_TRUSTED_PROXIES`` is empty; ConfigError for a bad entry."""
        entries = [e.strip() for e in settings.trusted_proxies.split(",") if e.strip()]
        if not entries:
            return None
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(
                    f"invalid settings:\n  - IMAS_TRUSTED_PROXIES: {entry!r} is not an IP "
                    "address or network"
                ) from None
        return cls(
            networks=tuple(networks),
            user_header=settings.proxy_user_header,
            groups_header=settings.proxy_groups_header,
            role_map=role_map,
            default_role=default_role,
        )

    def trusts(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def identity(self, peer: str | None, headers: dict[str, str]) -> ProxyIdentity | None:
        """Who the proxy says this is (None: not from a trusted proxy, no user header, or
        no role for their groups)."""
        if not self.trusts(peer):
            return None
        user = (headers.get(self.user_header.lower()) or "").strip()[:150]
        if not user or any(ord(c) < 32 for c in user):
            return None
        groups = [g.strip() for g in (headers.get(self.groups_header.lower()) or "").split(",")]
        roles = [self.role_map[g] for g in groups if g in self.role_map]
        role = max(roles, key=lambda r: r.rank) if roles else self.default_role
        if role is None:
            return None
        return ProxyIdentity(username=user, email=user if "@" in user else None, role=role)
