"""The dashboard in a real headless Chromium against ``imas serve`` with the Slack
stand-in: the seed guide's Option A as written, then running the incident from the page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.presenter import incident_json
from storage import incidents as store
from tests.browser.conftest import WAIT_MS, add_users
from tests.fakes.google_api import FakeGoogle, make_service_account
from tests.scenario.conftest import SEED_CHANNEL, wait_until
from tests.scenario.test_lid import TEMPLATE as LID_TEMPLATE
from tests.scenario.test_seed_guide import apply_seed_config, declare_through_modal

DESCRIPTION = "Test de notification - connexion timeout sur tous les nœuds"


def announcement(fake_slack: Any) -> dict[str, Any]:
    found = [
        m
        for m in fake_slack.messages(SEED_CHANNEL)
        if m.get("user") == fake_slack.bot_user_id and m.get("thread_ts") in (None, m["ts"])
    ]
    assert len(found) == 1
    return dict(found[0])


def updates(fake_slack: Any, ts: str) -> int:
    """chat.update calls on the announcement so far."""
    return sum(
        1
        for call in fake_slack.calls
        if call.method == "chat.update"
        and call.args.get("channel") == SEED_CHANNEL
        and call.args.get("ts") == ts
    )


def orchestrated(server: Any) -> Any:
    rt = server.rt

    def finished() -> Any:
        with rt.transaction() as session:
            _n, rows = store.list_incidents(session)
            if not rows:
                return None
            data = incident_json(session, rt, rows[0], detail=True)
            states = {d["state"] for d in data["deliveries"]}
            finished = states <= {"done"} and data["war_room_channel_id"]
            google_done = data["lid_url"] or not rt.settings.google_enabled
            return data if finished and google_done else None

    return wait_until(finished, message="orchestration to finish")


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    fake.add_folder("folder-1", shared_drive=True)
    fake.add_template("template-1", LID_TEMPLATE, parent="folder-1")
    yield fake
    fake.close()


def test_seed_option_a_then_run_the_incident_from_the_page(
    tmp_path: Path,
    database_url: str,
    start_server: Any,
    fake_slack: Any,
    google: FakeGoogle,
    web: Any,
) -> None:
    apply_seed_config(tmp_path, database_url)
    server = start_server(
        google_service_account_json=json.dumps(make_service_account(google)),
        google_api_endpoint=google.url,
        google_token_uri=google.token_uri,
        google_lid_template_id="template-1",
        google_drive_folder_id="folder-1",
        google_drive_domain="example.com",
    )
    add_users(server, alice="responder")
    browser = web(server)
    page = browser.page

    # Option A, as the seed guide writes it (signing in first).
    browser.sign_in("alice", then="/dashboard/incidents/create/")
    page.fill("#title", "[TEST] Redis Cluster Down")
    page.fill("#description", DESCRIPTION)
    page.select_option("#service", "redis-prod")
    page.select_option("#severity", "SEV2_HIGH")
    page.click("text=Create Incident")
    page.wait_for_url("**/dashboard/incidents/INC-*/")
    short_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.locator("h1").inner_text() == "[TEST] Redis Cluster Down"

    # The Slack stand-in got the seed's announcement and the war room.
    data = orchestrated(server)
    assert data["short_id"] == short_id and data["source"] == "web"
    blocks = announcement(fake_slack)["blocks"]
    assert blocks[0]["text"]["text"] == "🟠 [TEST] Redis Cluster Down - redis-prod"
    room = fake_slack.channel(data["war_room_channel_id"])
    assert room.name == f"{short_id.lower()}-test-redis-cluster-down"

    # "In the dashboard, open the incident and check the timeline."
    page.reload()
    timeline = page.locator("#timeline")
    assert timeline.locator("li[data-type=ALERT_SENT]").count() >= 1  # channel, on-call DM
    assert "Notification sent to Slack (SRE Core)" in timeline.inner_text()
    assert "alice" in timeline.inner_text()  # the actor of the declaration
    assert timeline.locator("li[data-type=DOCUMENT_CREATED]").count() == 1
    assert page.locator("a:has-text('LID document')").get_attribute("href") == data["lid_url"]
    assert page.locator("a:has-text('War room')").count() == 1
    assert page.locator("a:has-text('Runbook')").get_attribute("href") == (
        "https://wiki.example.com/runbooks/redis"
    )
    deliveries = page.locator("#deliveries").inner_text()
    assert "done" in deliveries

    # Acknowledge from the page: the Slack announcement is updated in place.
    ann_ts = announcement(fake_slack)["ts"]
    fake_slack.clear_calls()
    page.click("#actions button:has-text('Acknowledge')")
    page.wait_for_selector(".flash-ok")
    assert f"{short_id} is now ACKNOWLEDGED." in page.locator(".flash").inner_text()
    fake_slack.wait_for("chat.update", channel=SEED_CHANNEL, ts=ann_ts)
    wait_until(
        lambda: "ACKNOWLEDGED" in str(announcement(fake_slack)["blocks"]),
        message="announcement updated to ACKNOWLEDGED",
    )
    acked_updates = updates(fake_slack, ann_ts)

    # A note.
    page.fill("#note-text", "Failover to the replica started")
    page.click("button:has-text('Add note')")
    page.wait_for_selector("#timeline li:has-text('Failover to the replica started')")

    # Resolve with a summary.
    page.fill("#summary", "Replica promoted, cluster healthy")
    page.click("button:has-text('Resolve')")
    page.wait_for_selector(".badges .status-resolved")
    assert "Replica promoted, cluster healthy" in page.inner_text("main")
    wait_until(
        lambda: updates(fake_slack, ann_ts) > acked_updates,
        message="a second chat.update of the announcement",
    )
    wait_until(
        lambda: "RESOLVED" in str(announcement(fake_slack)["blocks"]),
        message="announcement updated to RESOLVED",
    )
    # Once resolved, only what still applies is offered.
    assert page.locator("#actions button:has-text('Acknowledge')").count() == 0


def test_viewer_private_csv_csrf_and_live_list(
    tmp_path: Path,
    database_url: str,
    start_server: Any,
    fake_slack: Any,
    driver: Any,
    web: Any,
) -> None:
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    add_users(server, boss="admin", vic="viewer", rita="responder")

    admin = web(server)
    admin.sign_in("boss", then="/dashboard/incidents/create/")
    page = admin.page
    for title, severity, private in (
        ("Public redis latency", "SEV3_MEDIUM", False),
        ("Low disk warning", "SEV4_LOW", False),
        ("Secret payroll outage", "SEV3_MEDIUM", True),
    ):
        page.goto(admin.url("/dashboard/incidents/create/"))
        page.fill("#title", title)
        page.select_option("#service", "redis-prod")
        page.select_option("#severity", severity)
        if private:
            page.check("input[name=private]")
        page.click("text=Create Incident")
        page.wait_for_url("**/dashboard/incidents/INC-*/")
    private_url = page.url
    assert page.locator("#actions").count() == 1

    # A viewer sees the incident, and no action form.
    viewer = web(server)
    viewer.sign_in("vic")
    viewer.page.click("a:has-text('Incidents')")
    viewer.page.click("a:has-text('Public redis latency')")
    assert viewer.page.locator("h1").inner_text() == "Public redis latency"
    assert viewer.page.locator("#actions").count() == 0
    assert viewer.page.locator("form[action$='/status/']").count() == 0
    assert "Declare" not in viewer.page.locator("header nav").inner_text()

    # A private incident is invisible to someone not involved in it.
    responder = web(server)
    responder.sign_in("rita", then="/dashboard/incidents/")
    assert "Secret payroll outage" not in responder.page.inner_text("main")
    response = responder.page.goto(private_url)
    assert response.status == 404
    assert "Secret payroll outage" not in responder.page.content()

    # CSV export of the filtered list downloads exactly the filtered rows.
    page.goto(admin.url("/dashboard/incidents/"))
    page.select_option("#f-severity", "SEV3_MEDIUM")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**severity=SEV3_MEDIUM**")
    with page.expect_download() as caught:
        page.click("#csv-export")
    content = Path(caught.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert sorted(r["title"] for r in rows) == ["Public redis latency", "Secret payroll outage"]
    assert {r["severity"] for r in rows} == {"SEV3_MEDIUM"}

    # Analytics renders its charts (non-empty SVG) and their tables for the seeded data.
    page.goto(admin.url("/dashboard/analytics/?days=7"))
    assert page.locator("#a-total").inner_text() == "3"
    assert page.locator("svg.chart").count() == 5
    assert page.locator("#chart-per-day svg rect").count() >= 7
    assert (
        page.locator("#chart-heatmap svg rect.heat-1, #chart-heatmap svg rect.heat-4").count() >= 1
    )
    assert "redis-prod" in page.locator("#by-service").inner_text()
    page.click("#chart-per-day summary")
    assert page.locator("#chart-per-day table").is_visible()

    # A form post without the CSRF token is refused (same cookies, no token).
    refused = admin.context.request.post(
        admin.url("/dashboard/incidents/create/"),
        form={"title": "forged", "service": "redis-prod", "severity": "SEV1_CRITICAL"},
    )
    assert refused.status == 403
    with server.rt.transaction() as session:
        assert store.list_incidents(session)[0] == 3

    # The list updates by itself when an incident is declared from Slack.
    page.goto(admin.url("/dashboard/incidents/"))
    assert page.locator("#incident-rows tbody tr").count() == 3
    declare_through_modal(driver(server), fake_slack)
    page.wait_for_selector(
        "#incident-rows td:has-text('[TEST] Redis Cluster Down')", timeout=WAIT_MS
    )
    assert page.locator("#incident-rows tbody tr").count() == 4


def test_single_sign_on_in_the_browser(start_server: Any, web: Any) -> None:
    import socket

    from tests.fakes.oidc_issuer import CLIENT_ID, CLIENT_SECRET, OidcIssuer

    with socket.socket() as probe:  # the redirect URI must name the server's own port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    issuer = OidcIssuer().start()
    issuer.user = {**issuer.user, "groups": ["imas-managers"]}
    try:
        server = start_server(
            port=port,
            base_url=f"http://127.0.0.1:{port}",
            oidc_issuer=issuer.url,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_role_map="imas-managers=manager",
            oidc_label="Example SSO",
        )
        browser = web(server)
        page = browser.page
        page.goto(browser.url("/dashboard/analytics/"))
        page.click("#sso")
        page.wait_for_url(browser.url("/dashboard/analytics/"))
        assert "grace@example.com (manager)" in page.locator("header .who").inner_text()
        page.click("header nav a:has-text('Configuration')")  # managers see the configuration
        assert page.locator("h1").inner_text().startswith("Configuration")
        page.click("button:has-text('Sign out')")
        page.wait_for_url("**/dashboard/login/")
        assert page.locator("#sso").count() == 1
    finally:
        issuer.stop()
