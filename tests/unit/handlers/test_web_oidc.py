"""Dashboard single sign-on against a local OpenID Connect issuer (tests/fakes/oidc_issuer:
real RS256 ID tokens, JWKS, PKCE): the claim -> role mapping, and every way a sign-in is
refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from bot.domain.errors import ConfigError
from bot.runtime import Runtime
from handlers.app import create_app
from storage.models import AuditEntry, Incident
from tests.api_helpers import Api, api_fixture
from tests.fakes.oidc_issuer import CLIENT_ID, CLIENT_SECRET, OidcIssuer
from tests.scenario.conftest import HANG_GUARD_SECONDS
from tests.unit.handlers.test_web import csrf_of


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    started = OidcIssuer().start()
    yield started
    started.stop()


def oidc_settings(issuer: OidcIssuer, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": "http://testserver",
        "oidc_issuer": issuer.url,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_role_map": "imas-responders=responder, imas-admins=admin",
        "oidc_label": "Example SSO",
        **overrides,
    }


@pytest.fixture
def sso(make_settings: Any, issuer: OidcIssuer) -> Iterator[Api]:
    yield from api_fixture(make_settings, **oidc_settings(issuer))


def single_sign_on(api: Api, next_path: str = "/dashboard/") -> Any:
    """Start at IMAS, follow the issuer's redirect back, return IMAS's last answer."""
    started = api.client.get(f"/dashboard/login/oidc/?next={next_path}", follow_redirects=False)
    assert started.status_code == 303, started.text
    authorize = started.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0]
    assert query["redirect_uri"] == ["http://testserver/dashboard/login/oidc/callback/"]
    back = requests.get(authorize, allow_redirects=False, timeout=HANG_GUARD_SECONDS)
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    return api.client.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def test_sign_in_maps_a_claim_to_a_role(sso: Api, issuer: OidcIssuer) -> None:
    login = sso.client.get("/dashboard/login/")
    assert "Sign in with Example SSO" in login.text
    done = single_sign_on(sso, "/dashboard/incidents/create/")
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/incidents/create/"
    page = sso.client.get("/dashboard/incidents/create/")
    assert "grace@example.com" in page.text and "(responder)" in page.text
    declared = sso.client.post(
        "/dashboard/incidents/create/",
        data={
            "title": "SSO declared",
            "service": "redis-prod",
            "severity": "SEV3_MEDIUM",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert declared.status_code == 303
    with sso.rt.transaction() as session:
        assert session.scalars(select(Incident)).one().title == "SSO declared"
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        login_row = next(r for r in rows if r.action == "auth.login")
        assert (login_row.actor, login_row.outcome, login_row.door) == (
            "grace@example.com",
            "ok",
            "web",
        )
        declare_row = next(r for r in rows if r.action == "incident.declare")
        assert (declare_row.actor, declare_row.actor_kind, declare_row.actor_ref) == (
            "grace@example.com",
            "api_user",
            "user:oidc:u-1001",
        )
    # The client authenticated at the token endpoint and fetched the keys through the guard.
    assert ("POST", "/token") in issuer.requests and ("GET", "/jwks") in issuer.requests


@pytest.mark.parametrize(
    ("groups", "default", "shown"),
    [
        (["imas-responders", "imas-admins"], None, "(admin)"),  # the highest mapped role
        ("imas-admins", None, "(admin)"),  # a string claim, not a list
        (["marketing"], "viewer", "(viewer)"),  # unmapped: IMAS_OIDC_DEFAULT_ROLE
    ],
)
def test_role_mapping(
    make_settings: Any, issuer: OidcIssuer, groups: Any, default: str | None, shown: str
) -> None:
    issuer.user = {**issuer.user, "groups": groups}
    extra = {"oidc_default_role": default} if default else {}
    for api in api_fixture(make_settings, **oidc_settings(issuer, **extra)):
        single_sign_on(api)
        home = api.client.get("/dashboard/")
        assert shown in home.text
        assert ("Declare" in home.text) is (shown != "(viewer)")


@pytest.mark.parametrize("tamper", ["nonce", "aud", "signature", "expired"])
def test_a_bad_id_token_is_refused(sso: Api, issuer: OidcIssuer, tamper: str) -> None:
    issuer.tamper = tamper
    refused = single_sign_on(sso)
    assert refused.status_code == 400 and "The ID token is not valid" in refused.text
    assert sso.client.get("/dashboard/", follow_redirects=False).status_code == 303
    with sso.rt.transaction() as session:
        denied = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
        assert len(denied) == 1 and denied[0].action == "auth.login"


def test_no_role_no_entry(sso: Api, issuer: OidcIssuer) -> None:
    issuer.user = {**issuer.user, "groups": ["marketing"]}
    refused = single_sign_on(sso)
    assert refused.status_code == 400 and "no IMAS role" in refused.text


def test_a_callback_that_did_not_start_here_is_refused(sso: Api, issuer: OidcIssuer) -> None:
    started = sso.client.get("/dashboard/login/oidc/", follow_redirects=False)
    back = requests.get(started.headers["location"], allow_redirects=False, timeout=30)
    callback = urlsplit(back.headers["location"])
    forged = callback.query.replace("state=", "state=x")
    refused = sso.client.get(f"{callback.path}?{forged}")
    assert refused.status_code == 400 and "did not start here" in refused.text
    error = sso.client.get("/dashboard/login/oidc/callback/?error=access_denied")
    assert error.status_code == 400 and "access_denied" in error.text


def test_without_issuer_there_is_no_sso(make_settings: Any) -> None:
    for api in api_fixture(make_settings, base_url="http://testserver"):
        assert "Sign in with" not in api.client.get("/dashboard/login/").text
        assert api.client.get("/dashboard/login/oidc/").status_code == 404


def test_a_bad_role_map_stops_the_start(make_settings: Any, issuer: OidcIssuer) -> None:
    settings = make_settings(**oidc_settings(issuer, oidc_role_map="admins=superuser"))
    rt = Runtime.build(settings)
    try:
        with pytest.raises(ConfigError, match="IMAS_OIDC_ROLE_MAP"):
            create_app(rt)
    finally:
        rt.close()
