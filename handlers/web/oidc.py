"""Dashboard single sign-on with OpenID Connect (any standard issuer: Google, Okta,
Keycloak, Entra ID): authorization code flow with PKCE (S256), ``state`` and ``nonce``.

Well-kept libraries do the protocol: Authlib's ``OAuth2Session`` (requests) builds the
authorization URL with the PKCE challenge and exchanges the code; joserfc verifies the ID
token (signature against the issuer's JWKS, ``iss``, ``aud``, ``exp``/``iat``, ``nonce``).
Every call to the issuer (discovery, token, JWKS) goes through IMAS's address guard (the
requests session has the guarded adapter mounted).

The role: the values of the ID token's ``IMAS_OIDC_ROLE_CLAIM`` (a string or a list,
e.g. ``groups``) looked up in ``IMAS_OIDC_ROLE_MAP`` (``imas-admins=admin,sre=responder``;
the highest match wins), else ``IMAS_OIDC_DEFAULT_ROLE``, else the sign-in is refused.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bot.domain.enums import AccessRole, parse_access_role
from bot.domain.errors import ConfigError, ImasError, InputError, ProviderError
from bot.runtime import Runtime
from bot.settings import Settings
from providers.http import guarded_session

CALLBACK_PATH = "/dashboard/login/oidc/callback/"
DISCOVERY_TTL = 3600.0
LEEWAY = 120


class SignInRefused(Exception):  # noqa: N818 - a refusal shown on the sign-in page
    pass


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    role_claim: str
    role_map: dict[str, AccessRole]
    default_role: AccessRole | None
    label: str
    redirect_uri: str


def role_mapping(settings: Settings) -> tuple[dict[str, AccessRole], AccessRole | None]:
    """``IMAS_OIDC_ROLE_MAP`` and ``IMAS_OIDC_DEFAULT_ROLE``, parsed (ConfigError when
    invalid); shared by single sign-on and the trusted proxy."""
    problems = []
    role_map: dict[str, AccessRole] = {}
    for item in filter(None, (part.strip() for part in settings.oidc_role_map.split(","))):
        value, sep, role = item.rpartition("=")
        try:
            if not sep or not value.strip():
                raise InputError("expected value=role")
            role_map[value.strip()] = parse_access_role(role.strip())
        except InputError as exc:
            problems.append(f"IMAS_OIDC_ROLE_MAP: {item!r}: {exc.message}")
    default = None
    if settings.oidc_default_role:
        try:
            default = parse_access_role(settings.oidc_default_role)
        except InputError as exc:
            problems.append(f"IMAS_OIDC_DEFAULT_ROLE: {exc.message}")
    if problems:
        raise ConfigError("invalid settings:\n  - " + "\n  - ".join(problems))
    return role_map, default


def config_of(settings: Settings) -> OidcConfig | None:
    """The OIDC configuration, None when ``IMAS_OIDC_ISSUER`` is unset. ConfigError for a
    half or invalid configuration (``imas serve`` refuses to start)."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_client_id:
        raise ConfigError(
            "invalid settings:\n  - IMAS_OIDC_CLIENT_ID is required with IMAS_OIDC_ISSUER"
        )
    role_map, default = role_mapping(settings)
    return OidcConfig(
        issuer=settings.oidc_issuer.rstrip("/"),
        client_id=str(settings.oidc_client_id),
        client_secret=settings.oidc_client_secret.get_secret_value()
        if settings.oidc_client_secret
        else None,
        scopes=settings.oidc_scopes,
        role_claim=settings.oidc_role_claim,
        role_map=role_map,
        default_role=default,
        label=settings.oidc_label,
        redirect_uri=settings.base_url + CALLBACK_PATH,
    )


@dataclass(frozen=True)
class OidcIdentity:
    subject: str
    username: str
    email: str | None
    role: AccessRole


class OidcClient:
    def __init__(self, rt: Runtime, config: OidcConfig) -> None:
        self.rt = rt
        self.config = config
        self._metadata: dict[str, Any] | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def _session(self) -> OAuth2Session:
        session = OAuth2Session(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scopes,
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic"
            if self.config.client_secret
            else "none",
        )
        guarded_session(self.rt.http.policy, session)
        return session

    def _get_json(self, url: str) -> dict[str, Any]:
        """A JSON document from the issuer, through the guarded HTTP client."""
        try:
            response = self.rt.http.request("GET", url, headers={"Accept": "application/json"})
            body = response.json()
        except ProviderError as exc:
            raise SignInRefused(f"The identity provider is unreachable: {exc.describe()}") from None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SignInRefused("The identity provider sent an unexpected answer.")
        return body

    def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (cached for an hour)."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._fetched < DISCOVERY_TTL:
                return self._metadata
        found = self._get_json(self.config.issuer + "/.well-known/openid-configuration")
        if str(found.get("issuer", "")).rstrip("/") != self.config.issuer:
            raise SignInRefused("The identity provider's discovery document names another issuer.")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(found.get(key), str):
                raise SignInRefused(f"The identity provider's discovery document lacks {key}.")
        with self._lock:
            self._metadata, self._fetched = found, time.monotonic()
        return found

    def start(self) -> tuple[str, dict[str, str]]:
        """The authorization URL to send the browser to, and the flow state to keep in the
        (signed) session until the callback."""
        metadata = self.metadata()
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24)
        with self._session() as session:
            url, state = session.create_authorization_url(
                metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
            )
        return url, {"state": state, "nonce": nonce, "verifier": verifier}

    def finish(self, flow: dict[str, str], *, query: str, state: str) -> OidcIdentity:
        """The signed-in identity from the callback's query string. Raises SignInRefused."""
        if not flow or not secrets.compare_digest(flow.get("state", ""), state or "-"):
            raise SignInRefused("The sign-in expired or did not start here. Try again.")
        metadata = self.metadata()
        try:
            with self._session() as session:
                self.rt.http.policy.check_url(metadata["token_endpoint"])
                token = session.fetch_token(
                    metadata["token_endpoint"],
                    authorization_response=f"{self.config.redirect_uri}?{query}",
                    code_verifier=flow["verifier"],
                    timeout=self.rt.http.timeout,
                )
        except ImasError:
            raise
        except Exception as exc:
            raise SignInRefused(
                f"The identity provider refused the sign-in ({type(exc).__name__})."
            ) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("The identity provider sent no ID token.")
        claims = self._verify(id_token, metadata, flow["nonce"])
        return self._identity(claims)

    def _verify(self, id_token: str, metadata: dict[str, Any], nonce: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(self._get_json(metadata["jwks_uri"]))  # type: ignore[arg-type]
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in algorithms if a != "none"]
        try:
            decoded = jwt.decode(id_token, keys, algorithms=algorithms)
            registry = jwt.JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise SignInRefused(f"The ID token is not valid ({type(exc).__name__}).") from None
        return dict(decoded.claims)

    def _identity(self, claims: dict[str, Any]) -> OidcIdentity:
        raw = claims.get(self.config.role_claim)
        values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        roles = [
            self.config.role_map[v]
            for v in values
            if isinstance(v, str) and v in self.config.role_map
        ]
        role = max(roles, key=lambda r: r.rank) if roles else self.config.default_role
        if role is None:
            raise SignInRefused("Your account has no IMAS role: ask an admin to grant you one.")
        email = claims.get("email") if claims.get("email_verified", True) else None
        email = email if isinstance(email, str) and "@" in email else None
        username = email or str(claims.get("preferred_username") or claims["sub"])
        return OidcIdentity(
            subject=str(claims["sub"]), username=username[:150], email=email, role=role
        )
