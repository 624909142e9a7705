"""Issue 10 items 6 and 7 against a real ``imas serve`` (uvicorn on loopback): forwarded
headers are believed only from IMAS_TRUSTED_PROXIES, and the web surface."""

from __future__ import annotations

import pytest
import requests

from storage import auth as auth_store


def base(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def login(server, forwarded_for: str) -> requests.Response:
    return requests.post(
        base(server) + "/api/auth/token/",
        json={"username": "alice", "password": "wrong-password"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=10,
    )


def add_user(server) -> None:
    with server.rt.transaction() as session:
        auth_store.create_user(
            session, username="alice", password="correct-horse-battery", role="viewer"
        )


def test_forwarded_for_from_loopback_does_not_bypass_the_login_limit(start_server):
    server = start_server()
    add_user(server)
    codes = [login(server, f"203.0.113.{n}").status_code for n in range(8)]
    assert codes[:5] == [400] * 5
    assert codes[5:] == [429] * 3


def test_forwarded_for_is_honoured_from_a_trusted_proxy(start_server):
    server = start_server(trusted_proxies="127.0.0.1, ::1")
    add_user(server)
    codes = [login(server, f"203.0.113.{n}").status_code for n in range(8)]
    assert codes == [400] * 8  # eight different clients behind the proxy
    same = [login(server, "198.51.100.7").status_code for _ in range(6)]
    assert same == [400] * 5 + [429]


@pytest.mark.parametrize("value", ["not-an-ip", "10.0.0.0/33", "*"])
def test_trusted_proxies_must_be_addresses(make_settings, value):
    from bot.domain.errors import ConfigError

    with pytest.raises(ConfigError, match="IMAS_TRUSTED_PROXIES"):
        make_settings(trusted_proxies=value)


# --- item 7: the web surface -------------------------------------------------------


def declare_one(server, **extra) -> str:
    from bot.domain.actor import Actor
    from bot.flows.declare import DeclareInput, declare

    incident, _ = declare(
        server.rt,
        data=DeclareInput(
            title="Redis down", service="redis-prod", severity="SEV3_MEDIUM", **extra
        ),
        actor=Actor("alice", "cli"),
    )
    return incident.short_id


def viewer_token(server) -> dict[str, str]:
    with server.rt.transaction() as session:
        token = auth_store.create_token(session, name="reader", role="viewer")[1]
    return {"Authorization": f"Token {token}"}


SECURITY = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def assert_hardened(response: requests.Response, https: bool) -> None:
    for name, value in SECURITY.items():
        assert response.headers[name] == value, name
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert ("Strict-Transport-Security" in response.headers) is https


@pytest.mark.parametrize("https", [False, True])
def test_security_headers_on_every_response(start_server, tmp_path, database_url, https):
    from tests.scenario.test_seed_guide import apply_seed_config

    apply_seed_config(tmp_path, database_url)
    server = start_server(
        base_url="https://imas.example.com" if https else "http://imas.internal:3000"
    )
    short_id = declare_one(server)
    token = viewer_token(server)
    url = base(server)
    responses = [
        requests.get(url + "/healthz", timeout=10),
        requests.get(url + "/readyz", timeout=10),
        requests.get(url + "/metrics", timeout=10),
        requests.get(url + "/api/schema", timeout=10),
        requests.get(url + "/api/docs", timeout=10),
        requests.get(url + "/api/v1/incidents/", timeout=10),  # 401
        requests.get(url + "/api/v1/incidents/", headers=token, timeout=10),
        requests.get(url + f"/incidents/{short_id}", headers=token, timeout=10),
        requests.get(url + f"/incidents/{short_id}", timeout=10),  # 401
        requests.get(url + "/incidents/INC-NOPE00", headers=token, timeout=10),  # 404
        requests.get(url + "/nowhere", timeout=10),
        requests.post(url + "/slack/events", data="x", timeout=10),
        requests.get(url + "/static/imas.css", timeout=10),
    ]
    for response in responses:
        assert_hardened(response, https)
    page = responses[7]
    assert page.status_code == 200
    assert "<style" not in page.text and "<script" not in page.text
    assert 'href="/static/imas.css"' in page.text
    assert responses[12].headers["Content-Type"].startswith("text/css")
    # Swagger UI's one inline script is allowed by its hash, nothing else inline
    docs_csp = responses[4].headers["Content-Security-Policy"]
    assert "'sha256-" in docs_csp and "'unsafe-inline'" not in docs_csp


def test_redirects_use_the_base_url_not_the_host_header(start_server):
    server = start_server(base_url="https://imas.example.com/prefix")
    response = requests.get(
        base(server) + "/api/v1/incidents?status=TRIGGERED",
        headers={"Host": "evil.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code in (307, 308)
    assert response.headers["Location"] == (
        "https://imas.example.com/prefix/api/v1/incidents/?status=TRIGGERED"
    )


@pytest.mark.parametrize(
    "ref",
    [
        "9" * 30,
        "9223372036854775808",  # 2**63
        "18446744073709551616",
        "0",
        "-1",
        "١٢٣",  # Arabic-Indic digits: str.isdigit() is true
        "²",  # isdigit() but not int()
        "INC-ÉÉÉÉÉÉ",
        "%00",
        "x" * 5000,
        "%F0%9F%92%A5",
        "..%2F..%2Fetc",
    ],
)
def test_odd_ids_are_404_never_500(start_server, ref):
    server = start_server()
    token = viewer_token(server)
    page = requests.get(base(server) + f"/incidents/{ref}", headers=token, timeout=10)
    assert page.status_code == (400 if ref == "%00" else 404), page.text
    api = requests.get(base(server) + f"/api/v1/incidents/{ref}/", headers=token, timeout=10)
    assert api.status_code in (400, 404), api.text


def test_page_needs_a_valid_token(start_server, tmp_path, database_url):
    from tests.scenario.test_seed_guide import apply_seed_config

    apply_seed_config(tmp_path, database_url)
    server = start_server()
    short_id = declare_one(server)
    url = base(server) + f"/incidents/{short_id}"
    for headers in ({}, {"Authorization": "Token nope"}, {"Authorization": "Basic !!"}):
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Token"
        assert "Redis" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents/?service=%00",
        "/api/v1/incidents/?search=a%00b",
        "/api/v1/incidents/?team=%00",
        "/api/v1/services/?search=%00",
        "/api/v1/alerts/?source=%00",
        "/api/v1/audit/?actor=%00",
        "/api/v1/incidents/INC-%00/",
        "/incidents/%00",
    ],
)
def test_nul_in_urls_is_400_on_every_database(start_server, path):
    server = start_server()
    with server.rt.transaction() as session:
        token = auth_store.create_token(session, name="admin", role="admin")[1]
    response = requests.get(
        base(server) + path, headers={"Authorization": f"Token {token}"}, timeout=10
    )
    assert response.status_code == 400, response.text
    assert_hardened(response, https=False)
