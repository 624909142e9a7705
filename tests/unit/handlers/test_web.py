"""The web dashboard in-process (handlers/web): sign-in, session cookie, CSRF, the forms
calling the flows, the access policy, CSV export. The real-browser tests are in
tests/browser/."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from storage import auth
from storage.models import AuditEntry, Incident
from tests.api_helpers import Api, api_fixture, row_counts

PASSWORD = "correct horse battery"
USERS = ("viewer", "responder", "manager", "admin")


@pytest.fixture
def web(make_settings: Any) -> Iterator[Api]:
    for api in api_fixture(make_settings, base_url="http://testserver"):
        with api.rt.transaction() as session:
            for role in USERS:
                auth.create_user(session, username=role, password=PASSWORD, role=role)
        yield api


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(api: Api, username: str) -> str:
    """Sign ``username`` in on ``api.client``; returns a CSRF token of the new session."""
    page = api.client.get("/dashboard/login/")
    response = api.client.post(
        "/dashboard/login/",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(api.client.get("/dashboard/").text)


def declare(api: Api, token: str, **fields: Any) -> Any:
    data = {
        "title": "[TEST] Redis Cluster Down",
        "description": "connexion timeout",
        "service": "redis-prod",
        "severity": "SEV2_HIGH",
        "csrf_token": token,
        **fields,
    }
    return api.client.post("/dashboard/incidents/create/", data=data, follow_redirects=False)


def test_root_redirects_and_pages_need_sign_in(web: Api) -> None:
    root = web.client.get("/", follow_redirects=False)
    assert root.status_code == 303 and root.headers["location"] == "/dashboard/"
    home = web.client.get("/dashboard/incidents/?status=open", follow_redirects=False)
    assert home.status_code == 303
    assert (
        home.headers["location"]
        == "/dashboard/login/?next=%2Fdashboard%2Fincidents%2F%3Fstatus%3Dopen"
    )
    login = web.client.get("/dashboard/login/")
    assert login.status_code == 200
    csp = login.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in login.text and "style=" not in login.text


def test_sign_in_sets_a_strict_cookie_and_sign_out_clears_it(web: Api) -> None:
    sign_in(web, "responder")
    page = web.client.get("/dashboard/")
    assert page.status_code == 200 and "responder" in page.text
    # The Set-Cookie header of a sign-in: HttpOnly, SameSite=Lax, scoped to /dashboard.
    web.client.cookies.clear()
    form = web.client.get("/dashboard/login/")
    response = web.client.post(
        "/dashboard/login/",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/dashboard" in header
    assert "secure" not in header  # http base URL
    out = web.client.post(
        "/dashboard/logout/",
        data={"csrf_token": csrf_of(web.client.get("/dashboard/").text)},
        follow_redirects=False,
    )
    assert out.status_code == 303
    assert web.client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_secure_cookie_when_base_url_is_https(make_settings: Any) -> None:
    for api in api_fixture(make_settings, base_url="https://imas.example.com"):
        with api.rt.transaction() as session:
            auth.create_user(session, username="ann", password=PASSWORD, role="viewer")
        form = api.client.get("/dashboard/login/")
        assert "secure" in form.headers["set-cookie"].lower()


def test_wrong_password_is_refused_audited_and_rate_limited(web: Api) -> None:
    form = web.client.get("/dashboard/login/")
    token = csrf_of(form.text)
    statuses = []
    for _ in range(6):
        response = web.client.post(
            "/dashboard/login/",
            data={"username": "admin", "password": "wrong-password", "csrf_token": token},
        )
        statuses.append(response.status_code)
    assert statuses == [400] * 5 + [429]
    assert "Wrong username or password." in response.text or "Too many" in response.text
    assert response.headers["retry-after"].isdigit()
    with web.rt.transaction() as session:
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "auth.login", AuditEntry.outcome == "denied"
            )
        ).all()
        assert len(denied) == 5 and {row.door for row in denied} == {"web"}
        assert all("wrong-password" not in (row.detail or "") for row in denied)


def test_next_never_leaves_the_dashboard(web: Api) -> None:
    form = web.client.get("/dashboard/login/")
    for target in ("//evil.example.com/x", "https://evil.example.com/", "/api/v1/"):
        response = web.client.post(
            "/dashboard/login/",
            data={
                "username": "viewer",
                "password": PASSWORD,
                "next": target,
                "csrf_token": csrf_of(form.text),
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/dashboard/"
        web.client.cookies.clear()
        form = web.client.get("/dashboard/login/")


def test_a_post_without_csrf_token_is_refused_and_writes_nothing(web: Api) -> None:
    token = sign_in(web, "admin")
    before = row_counts(web.rt)
    refused = declare(web, "")
    assert refused.status_code == 403 and "Form refused" in refused.text
    wrong = declare(web, token[:-2] + "xx")
    assert wrong.status_code == 403
    cross_site = web.client.post(
        "/dashboard/incidents/create/",
        data={"title": "x", "service": "redis-prod", "severity": "SEV2_HIGH", "csrf_token": token},
        headers={"Origin": "https://evil.example.com"},
    )
    assert cross_site.status_code == 403
    assert row_counts(web.rt) == before


def test_create_form_declares_through_the_flow(web: Api) -> None:
    token = sign_in(web, "responder")
    page = web.client.get("/dashboard/incidents/create/")
    for field in ('name="title"', 'name="description"', 'name="service"', 'name="severity"'):
        assert field in page.text
    assert (
        "SEV1_CRITICAL" in page.text and "SEV4_LOW" in page.text and "Create Incident" in page.text
    )
    response = declare(web, token)
    assert response.status_code == 303
    short_id = response.headers["location"].split("/")[-2]
    detail = web.client.get(response.headers["location"])
    assert detail.status_code == 200
    assert (
        "[TEST] Redis Cluster Down" in detail.text
        and f"Incident {short_id} declared." in detail.text
    )
    with web.rt.transaction() as session:
        incident = session.scalars(select(Incident)).one()
        assert incident.short_id == short_id and incident.source == "web"
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "incident.declare")
        ).one()
        assert (entry.door, entry.actor, entry.actor_ref) == ("web", "responder", "user:responder")


def test_create_form_shows_errors_and_writes_nothing(web: Api) -> None:
    token = sign_in(web, "responder")
    before = row_counts(web.rt)
    blank = declare(web, token, title="  ", service="")
    assert blank.status_code == 400
    assert "A title is required." in blank.text and "A service is required." in blank.text
    unknown = declare(web, token, service="nope")
    assert unknown.status_code == 400 and "Unknown service" in unknown.text
    assert row_counts(web.rt) == before
    viewer = api_client_as(web, "viewer")
    denied = declare(web, viewer)
    assert denied.status_code == 403 and "responder" in denied.text
    assert row_counts(web.rt)["incidents"] == 0


def api_client_as(api: Api, username: str) -> str:
    api.client.cookies.clear()
    return sign_in(api, username)


def test_detail_actions_call_the_flows_and_show_their_errors(web: Api) -> None:
    token = sign_in(web, "responder")
    location = declare(web, token).headers["location"]
    act = location + "status/"
    assert (
        web.client.post(act, data={"status": "ACKNOWLEDGED", "csrf_token": token}).status_code
        == 200
    )
    again = web.client.post(act, data={"status": "ACKNOWLEDGED", "csrf_token": token})
    assert "flash-error" in again.text  # ConflictError shown on the page
    note = web.client.post(
        location + "note/", data={"text": "Failover started", "csrf_token": token}
    )
    assert "Failover started" in note.text
    sev = web.client.post(
        location + "severity/", data={"severity": "SEV1_CRITICAL", "csrf_token": token}
    )
    assert "is now SEV1_CRITICAL" in sev.text
    resolved = web.client.post(
        act, data={"status": "RESOLVED", "summary": "Replica promoted", "csrf_token": token}
    )
    assert "Replica promoted" in resolved.text and "status-resolved" in resolved.text
    # Reopen needs the manager role: the responder is not offered the form.
    assert 'value="TRIGGERED"' not in resolved.text
    with web.rt.transaction() as session:
        incident = session.scalars(select(Incident)).one()
        assert incident.status == "RESOLVED" and incident.severity == "SEV1_CRITICAL"


def test_a_viewer_sees_no_action_forms_and_cannot_act(web: Api) -> None:
    token = sign_in(web, "admin")
    location = declare(web, token).headers["location"]
    assert 'id="actions"' in web.client.get(location).text
    viewer = api_client_as(web, "viewer")
    page = web.client.get(location)
    assert page.status_code == 200 and 'id="actions"' not in page.text
    assert "/status/" not in page.text and "/note/" not in page.text
    refused = web.client.post(
        location + "status/", data={"status": "ACKNOWLEDGED", "csrf_token": viewer}
    )
    assert "flash-error" in refused.text and "responder" in refused.text
    with web.rt.transaction() as session:
        assert session.scalars(select(Incident)).one().status == "TRIGGERED"


def test_private_incident_is_invisible_to_an_uninvolved_user(web: Api) -> None:
    token = sign_in(web, "admin")
    location = declare(web, token, private="on", title="Secret outage").headers["location"]
    api_client_as(web, "responder")
    assert web.client.get(location).status_code == 404
    listing = web.client.get("/dashboard/incidents/")
    assert "Secret outage" not in listing.text
    exported = web.client.get("/dashboard/incidents/?format=csv")
    assert "Secret outage" not in exported.text
    api_client_as(web, "manager")
    assert web.client.get(location).status_code == 200


def test_list_filters_and_csv_export(web: Api) -> None:
    token = sign_in(web, "admin")
    declare(web, token, title="Redis one", severity="SEV2_HIGH")
    declare(web, token, title="Postgres two", service="postgres-main", severity="SEV4_LOW")
    declare(web, token, title="=cmd|' /C calc'!A0", severity="SEV4_LOW")
    everything = web.client.get("/dashboard/incidents/")
    assert everything.status_code == 200 and 'id="incident-count">3<' in everything.text
    low = web.client.get("/dashboard/incidents/?severity=SEV4_LOW&service=postgres-main")
    assert "Postgres two" in low.text and "Redis one" not in low.text
    search = web.client.get("/dashboard/incidents/?q=redis")
    assert "Redis one" in search.text and "Postgres two" not in search.text
    exported = web.client.get("/dashboard/incidents/?severity=SEV4_LOW&format=csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["title"] for r in rows) == ["'=cmd|' /C calc'!A0", "Postgres two"]
    bad = web.client.get("/dashboard/incidents/?severity=SEV9")
    assert bad.status_code == 400 and "Unknown severity" in bad.text
    bad_date = web.client.get("/dashboard/incidents/?from=yesterday")
    assert bad_date.status_code == 400
    future = web.client.get("/dashboard/incidents/?from=2999-01-01")
    assert 'id="incident-count">0<' in future.text


def test_home_shows_the_figures(web: Api) -> None:
    token = sign_in(web, "admin")
    declare(web, token, severity="SEV1_CRITICAL")
    home = web.client.get("/dashboard/")
    assert home.status_code == 200
    assert 'id="stat-active">1<' in home.text and 'id="stat-critical">1<' in home.text
    assert "[TEST] Redis Cluster Down" in home.text


def backdate(
    api: Api, short_id: str, *, days: float, ack_min: float | None, res_min: float | None
) -> None:
    from datetime import timedelta

    with api.rt.transaction() as session:
        incident = session.scalars(select(Incident).where(Incident.short_id == short_id)).one()
        created = api.rt.clock() - timedelta(days=days)
        incident.created_at = created
        incident.acknowledged_at = None if ack_min is None else created + timedelta(minutes=ack_min)
        incident.resolved_at = None if res_min is None else created + timedelta(minutes=res_min)
        if res_min is not None:
            incident.status = "RESOLVED"


def test_analytics_draws_charts_and_tables_for_seeded_data(web: Api) -> None:
    token = sign_in(web, "admin")
    made = []
    for title, service, days, ack, res in (
        ("a", "redis-prod", 1, 5, 60),
        ("b", "redis-prod", 3, 10, 120),
        ("c", "postgres-main", 10, None, None),
        ("d", "postgres-main", 45, 2, 30),
    ):
        location = declare(web, token, title=title, service=service).headers["location"]
        made.append(location.split("/")[-2])
        backdate(web, made[-1], days=days, ack_min=ack, res_min=res)
    page = web.client.get("/dashboard/analytics/?days=30")
    assert page.status_code == 200
    assert 'id="a-total">3<' in page.text
    for chart in ("chart-per-day", "chart-mtta", "chart-mttr", "chart-heatmap", "chart-by-service"):
        section = page.text.split(f'id="{chart}"', 1)[1].split("</section>", 1)[0]
        assert "<svg" in section and ("<rect" in section or "<polyline" in section), chart
        assert "<table" in section, chart
    by_service = page.text.split('id="by-service"', 1)[1].split("</table>", 1)[0]
    assert by_service.index("redis-prod") < by_service.index("postgres-main")
    assert "<td>redis-prod</td><td>2</td>" in by_service
    quarter = web.client.get("/dashboard/analytics/?days=90&service=postgres-main")
    assert 'id="a-total">2<' in quarter.text and "per week" in quarter.text
    bad = web.client.get("/dashboard/analytics/?severity=SEV9")
    assert bad.status_code == 400
    assert "<script>" not in page.text and "style=" not in page.text


def test_configuration_is_read_only_for_managers_with_secrets_masked(web: Api) -> None:
    from storage.models import NotificationProviderRow

    with web.rt.transaction() as session:
        session.add(
            NotificationProviderRow(
                name="Team webhook",
                type="SLACK",
                is_active=True,
                config_encrypted=web.rt.box.encrypt_json(
                    {"bot_token": "xoxb-very-secret-token", "default_channel": "C0123456789"}
                ),
            )
        )
    sign_in(web, "manager")
    page = web.client.get("/dashboard/config/")
    assert page.status_code == 200
    assert "redis-prod" in page.text and "SRE Core" in page.text and "Team webhook" in page.text
    assert (
        "xoxb-very-secret-token" not in page.text and "${IMAS_TEAM_WEBHOOK_BOT_TOKEN}" in page.text
    )
    api_client_as(web, "responder")
    assert web.client.get("/dashboard/config/").status_code == 403


def test_links_from_configuration_are_http_only(web: Api) -> None:
    from storage.models import Service

    with web.rt.transaction() as session:
        service = session.scalars(select(Service).where(Service.name == "redis-prod")).one()
        service.runbook_url = "javascript:alert(1)"
    token = sign_in(web, "admin")
    page = web.client.get(declare(web, token).headers["location"])
    assert "javascript:" not in page.text and "Runbook" not in page.text


def test_timeline_messages_show_slack_references_as_text() -> None:
    from handlers.web.render import ENV, slack_plain

    assert slack_plain("War room <#C0ROOM123> created") == "War room #C0ROOM123 created"
    assert slack_plain("Paged <@U0ONCALL1|oncall>") == "Paged @oncall"
    assert slack_plain("See <https://docs.example.com/x|the LID>") == "See the LID"
    assert slack_plain("a <b> note") == "a <b> note"  # typed text is left as typed
    rendered = ENV.from_string("{{ m|slack_plain }}").render(m="<script>alert(1)</script>")
    assert "<script>" not in rendered
