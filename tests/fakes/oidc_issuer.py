"""A local OpenID Connect issuer (``ThreadingHTTPServer`` on 127.0.0.1): discovery,
an authorization endpoint that signs in ``issuer.user`` at once (no login form), a token
endpoint that checks the client's secret, the code, the redirect URI and the PKCE
verifier (S256), and a JWKS endpoint. ID tokens are real RS256 JWTs signed with a fresh
RSA key (joserfc), so the client's signature, ``iss``, ``aud``, ``exp`` and ``nonce``
checks run for real.

Knobs for negative tests: ``issuer.user`` (the claims of the next sign-in),
``issuer.tamper`` ("nonce", "aud", "signature", "expired": the next ID token is wrong in
that way), ``issuer.requests`` (what was asked, for assertions).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "imas-dashboard"
CLIENT_SECRET = "oidc-client-secret-0123456789"


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    nonce: str
    claims: dict[str, Any]


@dataclass
class OidcIssuer:
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "u-1001",
            "email": "grace@example.com",
            "email_verified": True,
            "name": "Grace Hopper",
            "groups": ["imas-responders"],
        }
    )
    tamper: str | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                issuer.requests.append(("GET", parts.path))
                if parts.path == "/.well-known/openid-configuration":
                    self._send(200, issuer.discovery())
                elif parts.path == "/jwks":
                    self._send(200, {"keys": [issuer.key.as_dict(private=False)]})
                elif parts.path == "/authorize":
                    status, location = issuer.authorize(parse_qs(parts.query))
                    self._send(
                        status,
                        None if location else {"error": "bad request"},
                        {"Location": location} if location else None,
                    )
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                issuer.requests.append(("POST", parts.path))
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if parts.path != "/token":
                    self._send(404, {"error": "not found"})
                    return
                status, body = issuer.token(form, self.headers.get("Authorization", ""))
                self._send(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> OidcIssuer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, list[str]]) -> tuple[int, str | None]:
        one = {k: v[0] for k, v in query.items()}
        if one.get("response_type") != "code" or one.get("client_id") != CLIENT_ID:
            return 400, None
        if one.get("code_challenge_method") != "S256" or not one.get("code_challenge"):
            return 400, None
        if "openid" not in one.get("scope", "").split():
            return 400, None
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(
                client_id=one["client_id"],
                redirect_uri=one["redirect_uri"],
                challenge=one["code_challenge"],
                method=one["code_challenge_method"],
                nonce=one.get("nonce", ""),
                claims=dict(self.user),
            )
        return 302, one["redirect_uri"] + "?" + urlencode(
            {"code": code, "state": one.get("state", "")}
        )

    def token(self, form: dict[str, list[str]], authorization: str) -> tuple[int, dict[str, Any]]:
        one = {k: v[0] for k, v in form.items()}
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._grants.pop(one.get("code", ""), None)
        if grant is None or one.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if one.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        digest = hashlib.sha256(one.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **grant.claims,
        }
        key = self.key
        if self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif self.tamper == "aud":
            claims["aud"] = "another-client"
        elif self.tamper == "expired":
            claims["exp"] = now - 3600
            claims["iat"] = now - 7200
        elif self.tamper == "signature":
            key = self.other_key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, key)
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }
