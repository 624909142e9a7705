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
