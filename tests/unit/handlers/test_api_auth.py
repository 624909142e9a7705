"""``POST /api/auth/token/``, token authentication details and the login rate limit."""

from __future__ import annotations

import base64
from datetime import timedelta

from sqlalchemy import func, select

from handlers.api.auth import LoginLimiter
from storage import auth
from storage.models import ApiToken, ApiUser, utcnow
from tests.api_helpers import Api

LOGIN = "/api/auth/token/"


def make_user(
    api: Api, username: str = "admin", password: str = "your-password", role: str = "admin"
) -> int:
    with api.rt.transaction() as session:
        return auth.create_user(session, username=username, password=password, role=role).id


def token_count(api: Api) -> int:
    with api.rt.transaction() as session:
        return session.scalar(select(func.count()).select_from(ApiToken)) or 0


def test_login_returns_a_working_token(api: Api) -> None:
    make_user(api, role="responder")
    response = api.client.post(LOGIN, json={"username": "admin", "password": "your-password"})
    assert response.status_code == 200
    data = response.json()
    assert data["role"] == "responder" and data["token"].startswith("imas_")
    with api.rt.transaction() as session:
        row = auth.find_token(session, token=data["token"])
        assert row is not None and row.name == "login:admin" and row.role == "responder"
        assert row.token_hash != data["token"]
    listed = api.client.get(
        "/api/v1/incidents/", headers={"Authorization": f"Token {data['token']}"}
    )
    assert listed.status_code == 200


def test_wrong_credentials_are_400_and_write_nothing(api: Api) -> None:
    make_user(api)
    before = token_count(api)
    for body in (
        {"username": "admin", "password": "wrong"},
        {"username": "nobody", "password": "x"},
    ):
        response = api.client.post(LOGIN, json=body)
        assert response.status_code == 400
        assert response.json()["detail"] == "Unable to log in with provided credentials."
        assert "wrong" not in response.text
    for bad in ({"username": "admin"}, {"username": 1, "password": "x"}, []):
        assert api.client.post(LOGIN, json=bad).status_code == 400
    assert token_count(api) == before


def test_inactive_user_cannot_log_in_and_loses_tokens(api: Api) -> None:
    user_id = make_user(api)
    token = api.client.post(LOGIN, json={"username": "admin", "password": "your-password"}).json()[
        "token"
    ]
    with api.rt.transaction() as session:
        session.get(ApiUser, user_id).is_active = False  # type: ignore[union-attr]
    response = api.client.post(LOGIN, json={"username": "admin", "password": "your-password"})
    assert response.status_code == 400
    used = api.client.get("/api/v1/teams/", headers={"Authorization": f"Bearer {token}"})
    assert used.status_code == 401 and used.json()["detail"] == "User inactive or deleted."


def test_lowered_user_role_applies_to_existing_tokens(api: Api) -> None:
    user_id = make_user(api, role="manager")
    token = api.client.post(LOGIN, json={"username": "admin", "password": "your-password"}).json()[
        "token"
    ]
    with api.rt.transaction() as session:
        session.get(ApiUser, user_id).role = "viewer"  # type: ignore[union-attr]
    headers = {"Authorization": f"Token {token}"}
    assert api.client.get("/api/v1/teams/", headers=headers).status_code == 200
    created = api.client.post(
        "/api/v1/incidents/",
        headers=headers,
        json={"title": "x", "service": "redis-prod", "severity": "SEV4_LOW"},
    )
    assert created.status_code == 403


def test_failed_logins_are_rate_limited(api: Api) -> None:
    make_user(api)
    for _ in range(5):
        assert (
            api.client.post(LOGIN, json={"username": "admin", "password": "bad"}).status_code == 400
        )
    blocked = api.client.post(LOGIN, json={"username": "admin", "password": "your-password"})
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 300
    assert "Too many failed login attempts" in blocked.json()["detail"]
    # Another username from the same client is not blocked.
    make_user(api, username="other")
    assert (
        api.client.post(LOGIN, json={"username": "other", "password": "your-password"}).status_code
        == 200
    )


def test_limiter_window_and_reset() -> None:
    now = [1000.0]
    limiter = LoginLimiter(attempts=2, window=60, clock=lambda: now[0])
    key = ("admin", "10.0.0.1")
    limiter.failed(key)
    assert limiter.retry_after(key) is None
    limiter.failed(key)
    assert limiter.retry_after(key) == 60
    now[0] += 30
    assert limiter.retry_after(key) == 30
    now[0] += 31
    assert limiter.retry_after(key) is None
    limiter.failed(key)
    limiter.succeeded(key)
    limiter.failed(key)
    assert limiter.retry_after(key) is None
    small = LoginLimiter(attempts=1, window=60, max_keys=2, clock=lambda: now[0])
    for n in range(5):
        small.failed((str(n), "ip"))
    assert small.retry_after(("0", "ip")) is None and small.retry_after(("4", "ip")) == 60


def test_last_used_at_is_written_at_most_once_a_minute(api: Api) -> None:
    start = utcnow()
    clock = [start]
    api.rt.clock = lambda: clock[0]
    headers = api.auth("viewer")

    def last_used() -> object:
        with api.rt.transaction() as session:
            return session.scalar(
                select(ApiToken.last_used_at).where(ApiToken.name == "viewer-token")
            )

    api.client.get("/api/v1/teams/", headers=headers)
    assert last_used() == start
    clock[0] = start + timedelta(seconds=30)
    api.client.get("/api/v1/teams/", headers=headers)
    assert last_used() == start
    clock[0] = start + timedelta(seconds=61)
    api.client.get("/api/v1/teams/", headers=headers)
    assert last_used() == clock[0]


def test_basic_auth_with_token_as_password(api: Api) -> None:
    encoded = base64.b64encode(f"anyone:{api.tokens['viewer']}".encode()).decode()
    assert (
        api.client.get("/api/v1/teams/", headers={"Authorization": f"Basic {encoded}"}).status_code
        == 200
    )
    no_password = base64.b64encode(b"anyone").decode()
    response = api.client.get("/api/v1/teams/", headers={"Authorization": f"Basic {no_password}"})
    assert response.status_code == 401
