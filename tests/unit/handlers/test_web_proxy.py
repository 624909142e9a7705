"""Dashboard sign-in by a trusted authenticating proxy: the identity headers count only
from IMAS_TRUSTED_PROXIES; groups map to roles; forms still need their CSRF token."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bot.domain.errors import ConfigError
from storage.models import AuditEntry, Incident
from tests.scenario.conftest import HANG_GUARD_SECONDS
from tests.scenario.test_seed_guide import apply_seed_config

HEADERS = {"X-Forwarded-Email": "pat@example.com", "X-Forwarded-Groups": "ops,imas-sre"}


def get(server: Any, path: str, session: requests.Session | None = None, **headers: str) -> Any:
    client = session or requests.Session()
    return client.get(
        f"http://127.0.0.1:{server.port}{path}",
        headers=headers,
        allow_redirects=False,
        timeout=HANG_GUARD_SECONDS,
    )


def test_headers_from_a_trusted_proxy_sign_in(
    tmp_path: Any, database_url: str, start_server: Any
) -> None:
    apply_seed_config(tmp_path, database_url)
    server = start_server(
        trusted_proxies="10.0.0.0/8, 127.0.0.1", oidc_role_map="imas-sre=responder"
    )
    web = requests.Session()
    page = get(server, "/dashboard/incidents/create/", web, **HEADERS)
    assert page.status_code == 200 and "pat@example.com" in page.text and "(responder)" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"title": "Via the proxy", "service": "redis-prod", "severity": "SEV4_LOW"}
    url = f"http://127.0.0.1:{server.port}/dashboard/incidents/create/"
    forged = web.post(url, data=form, headers=HEADERS, allow_redirects=False, timeout=30)
    assert forged.status_code == 403  # the proxy vouches for the person, not for the form
    made = web.post(
        url,
        data={**form, "csrf_token": token.group(1)},
        headers=HEADERS,
        allow_redirects=False,
        timeout=30,
    )
    assert made.status_code == 303
    with server.rt.transaction() as session:
        assert session.scalars(select(Incident)).one().title == "Via the proxy"
        row = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "incident.declare")
        ).one()
        assert (row.actor, row.actor_kind, row.door) == ("pat@example.com", "api_user", "web")
    # Unmapped groups and no default role: no entry.
    unmapped = get(server, "/dashboard/", None, **{**HEADERS, "X-Forwarded-Groups": "ops"})
    assert unmapped.status_code == 303 and "/dashboard/login/" in unmapped.headers["location"]


def test_headers_from_anyone_else_are_ignored(
    tmp_path: Any, database_url: str, start_server: Any
) -> None:
    apply_seed_config(tmp_path, database_url)
    server = start_server(trusted_proxies="10.0.0.0/8", oidc_role_map="imas-sre=admin")
    page = get(server, "/dashboard/", None, **HEADERS)
    assert page.status_code == 303 and "/dashboard/login/" in page.headers["location"]


def test_a_bad_proxy_list_stops_the_start(make_settings: Any) -> None:
    with pytest.raises(ConfigError, match="IMAS_TRUSTED_PROXIES"):
        make_settings(trusted_proxies="10.0.0.0/8, proxy.internal")
