"""Issue 4: the LID, created from the template through the running server's outbox,
linked from Slack and the timeline, kept alive by later events, never doubled."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot import kpis
from bot.presenter import incident_json
from providers.google_docs import PLACEHOLDERS, end_marker, start_marker
from storage import incidents as store
from storage.models import OutboxItem
from tests.conftest import SEED_CHANNEL
from tests.fakes.google_api import FakeGoogle, make_service_account
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config, declare_through_modal

TEMPLATE = (
    "LEAD INCIDENT DOCUMENT\n"
    + "\n".join(f"{name}: {{{{{name}}}}}" for name in PLACEHOLDERS)
    + "\nNotes written by humans stay here.\n"
)


@pytest.fixture
def google() -> Any:
    fake = FakeGoogle()
    fake.add_folder("folder-1", shared_drive=True)
    fake.add_template("template-1", TEMPLATE, parent="folder-1")
    yield fake
    fake.close()


def settled(rt: Any) -> Any:
    with rt.transaction() as session:
        _n, rows = store.list_incidents(session)
        if not rows:
            return None
        data = incident_json(session, rt, rows[0], detail=True)
        if all(d["state"] == "done" for d in data["deliveries"]) and data["lid_url"]:
            return data
        return None


def test_lid_created_linked_and_kept_alive(
    tmp_path, database_url, start_server, driver, fake_slack, google
):
    apply_seed_config(tmp_path, database_url)
    info = make_service_account(google)
    server = start_server(
        google_service_account_json=json.dumps(info),
        google_api_endpoint=google.url,
        google_token_uri=google.token_uri,
        google_lid_template_id="template-1",
        google_drive_folder_id="folder-1",
        google_drive_domain="example.com",
    )
    slack = driver(server)
    declare_through_modal(slack, fake_slack)
    data = wait_until(lambda: settled(server.rt), message="LID and deliveries")

    documents = [f for f in google.files.values() if f.get("name", "").startswith(data["short_id"])]
    assert len(documents) == 1
    doc_id = documents[0]["id"]
    text = google.document_text(doc_id)
    assert "{{" not in text
    assert data["short_id"] in text and "[TEST] Redis Cluster Down" in text and "redis-prod" in text
    assert "Notes written by humans stay here." in text
    roles = {
        (p.get("type"), p.get("role"), p.get("emailAddress") or p.get("domain"))
        for p in google.permissions(doc_id)
    }
    assert ("group", "writer", "sre@example.com") in roles or (
        "user",
        "writer",
        "sre@example.com",
    ) in roles
    assert ("domain", "reader", "example.com") in roles
    assert any(t["type"] == "DOCUMENT_CREATED" for t in data["timeline"])
    # Linked from the announcement (edited in place once the document exists).
    announcement = next(m for m in fake_slack.messages(SEED_CHANNEL) if not m.get("thread_ts"))
    assert data["lid_url"] in json.dumps(announcement["blocks"])

    short_id = data["short_id"]
    assert slack.slash(f"ack {short_id}").status_code == 200
    assert slack.slash(f"severity SEV1 {short_id}").status_code == 200
    assert slack.slash(f"note {short_id} cache flushed on node 3").status_code == 200
    assert slack.slash(f"resolve {short_id} failover to replica").status_code == 200

    def synced() -> bool:
        with server.rt.transaction() as session:
            rows = session.query(OutboxItem).filter(OutboxItem.state != "done").count()
        body = google.document_text(doc_id)
        return rows == 0 and "failover to replica" in body and "RESOLVED" in body

    wait_until(synced, message="document synced")
    body = google.document_text(doc_id)
    timeline = body[body.index(start_marker("timeline")) : body.index(end_marker("timeline"))]
    order = [
        timeline.index(marker)
        for marker in (
            "to ACKNOWLEDGED",
            "to SEV1_CRITICAL",
            "cache flushed on node 3",
            "to RESOLVED",
        )
    ]
    assert order == sorted(order)
    assert timeline.count("cache flushed on node 3") == 1  # (the post-mortem quotes it too)

    # Replaying the same outbox rows changes nothing.
    before = google.document_text(doc_id)
    from bot.steps import make_worker

    worker = make_worker(server.rt)
    with server.rt.transaction() as session:
        rows = session.query(OutboxItem).filter(OutboxItem.kind.in_(("lid", "lid_sync"))).all()
        for row in rows:
            session.expunge(row)
    server.worker.stop()
    for row in rows:
        worker.steps[row.kind](server.rt, row)
    assert google.document_text(doc_id) == before
    assert len([f for f in google.files.values() if f.get("name", "").startswith(short_id)]) == 1


SEED_STYLE_TEMPLATE = (
    "INCIDENT {{INCIDENT_ID}} — {{INCIDENT_TITLE}}\n"
    "Status: {{STATUS}}\n"
    "Severity: {{SEVERITY}}\n"
    "Incident lead: {{LEAD_NAME}} ({{LEAD_EMAIL}})\n"
    "War room: {{WAR_ROOM_URL}}\n"
    "DESCRIPTION\n"
    "{{DESCRIPTION}}\n"
    "TIMELINE\n"
    "RESOLUTION\n"
    "POST-MORTEM\n"
)


def section(text: str, heading: str, following: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(heading)
    return lines[start + 1 : lines.index(following, start)]


def test_lid_lives_in_the_teams_own_template(
    tmp_path, database_url, start_server, driver, fake_slack
):
    """Issue 15 acceptance: the seed-style template's own places are kept current."""
    google = FakeGoogle()
    try:
        google.add_folder("folder-1", shared_drive=True)
        google.add_template("template-1", SEED_STYLE_TEMPLATE, parent="folder-1")
        apply_seed_config(tmp_path, database_url)
        server = start_server(
            google_service_account_json=json.dumps(make_service_account(google)),
            google_api_endpoint=google.url,
            google_token_uri=google.token_uri,
            google_lid_template_id="template-1",
            google_drive_folder_id="folder-1",
        )
        fake_slack.add_user("U0LEADBOB", "bob", email="bob.lead@example.com", real_name="Bob")
        slack = driver(server)
        declare_through_modal(slack, fake_slack, lead="U0LEADBOB")
        data = wait_until(lambda: settled(server.rt), message="LID and deliveries")
        short_id = data["short_id"]
        doc_id = next(f["id"] for f in google.files.values() if f["name"].startswith(short_id))
        assert "Status: TRIGGERED\n" in google.document_text(doc_id)

        # The lead picked in the modal (a Slack user) gets writer access by the e-mail
        # Slack's users.info gives; the declarer has no e-mail: a timeline warning says so.
        def shared() -> Any:
            writers = {
                p.get("emailAddress")
                for p in google.permissions(doc_id)
                if p["type"] == "user" and p["role"] == "writer"
            }
            return writers if "bob.lead@example.com" in writers else None

        wait_until(shared, message="document shared with the lead")
        assert any(
            c.method == "users.info" and c.args.get("user") == "U0LEADBOB" for c in fake_slack.calls
        )
        assert "alice@example.com" in shared()  # the declarer

        # A role holder is shared with when named; one without an e-mail is a warning.
        fake_slack.add_user("U0NOMAIL1", "carol")
        assert slack.slash(f"role communications <@U0ONCALL1> {short_id}").status_code == 200
        assert slack.slash(f"role scribe <@U0NOMAIL1> {short_id}").status_code == 200
        wait_until(
            lambda: "oncall@example.com" in (shared() or set()), message="shared with the comms"
        )

        def warning() -> Any:
            with server.rt.transaction() as session:
                incident = store.list_incidents(session)[1][0]
                events = incident_json(session, server.rt, incident, detail=True)["timeline"]
            return [e["message"] for e in events if e["type"] == "LID_SHARE_FAILED"]

        assert wait_until(warning, message="share warning") == [
            "Could not share the incident document with carol: their Slack profile shows no "
            "e-mail address (the app needs the users:read.email scope)"
        ]

        # Humans write between the sections while IMAS works.
        text = google.document_text(doc_id)
        google.edit_document(
            doc_id,
            text.replace("TIMELINE\n", "Bridge call notes by a human\nTIMELINE\n").replace(
                "POST-MORTEM\n", "POST-MORTEM\nReview booked Friday (human)\n"
            ),
        )

        assert slack.slash(f"ack {short_id}").status_code == 200
        assert slack.slash(f"severity SEV1 {short_id}").status_code == 200
        assert slack.slash(f"note {short_id} cache flushed on node 3").status_code == 200
        assert slack.slash(f"resolve {short_id} failover to replica").status_code == 200

        def synced() -> bool:
            with server.rt.transaction() as session:
                open_rows = session.query(OutboxItem).filter(OutboxItem.state != "done").count()
            body = google.document_text(doc_id)
            return open_rows == 0 and "Status: RESOLVED\n" in body and "failover" in body

        wait_until(synced, message="document synced")
        body = google.document_text(doc_id)
        assert "Status: TRIGGERED" not in body and "Severity: SEV1_CRITICAL\n" in body
        assert "Incident lead: Bob (bob.lead@example.com)\n" in body
        assert "(IMAS)" not in body and "IMAS STATUS" not in body  # no IMAS-appended section
        assert "⟦" not in body  # no markers or tags
        assert "Bridge call notes by a human\nTIMELINE\n" in body
        assert "Review booked Friday (human)" in body
        assert section(body, "RESOLUTION", "POST-MORTEM") == ["failover to replica"]

        # The post-mortem draft fills the template's POST-MORTEM section, above the text a
        # human had typed there; its durations are the metrics API's.
        postmortem = body.splitlines()[body.splitlines().index("POST-MORTEM") + 1 :]
        assert postmortem[0].startswith(f"Post-mortem draft for {short_id}")
        assert postmortem[1:3] == ["Summary", "failover to replica"]
        assert postmortem[-7:] == [
            "What went well",
            "—",
            "What went wrong",
            "—",
            "Action items",
            "—",
            "Review booked Friday (human)",
        ]
        assert "Bob: lead" in postmortem and "alice: declarer" in postmortem
        assert "oncall@example.com: communications" in postmortem
        assert "carol: scribe" in postmortem
        assert any(line.startswith("★ ") and "to RESOLVED" in line for line in postmortem)
        assert any(line.startswith("20") and "cache flushed" in line for line in postmortem)
        with server.rt.transaction() as session:
            metrics = kpis.compute(session)
        for label, measure in (("MTTA (time to acknowledge)", "mtta"), ("MTTR", "mttr")):
            line = next(x for x in postmortem if x.startswith(label))
            assert float(line.rsplit("(", 1)[1].split()[0]) == metrics[measure]["mean"]

        timeline = section(body, "TIMELINE", "RESOLUTION")
        with server.rt.transaction() as session:
            incident = store.list_incidents(session)[1][0]
            events = incident_json(session, server.rt, incident, detail=True)["timeline"]
        expected = [e for e in events if e["type"] not in ("ALERT_SENT", "NOTIFICATION_FAILED")]
        assert len(timeline) == len(expected)  # one line per event
        for event in expected:
            assert sum(event["message"] in line for line in timeline) >= 1
        assert [line[:23] for line in timeline] == sorted(line[:23] for line in timeline)
        order = [
            next(i for i, line in enumerate(timeline) if marker in line)
            for marker in ("to ACKNOWLEDGED", "to SEV1_CRITICAL", "cache flushed", "to RESOLVED")
        ]
        assert order == sorted(order)

        # Replaying every LID row of the outbox changes nothing.
        from bot.steps import make_worker

        worker = make_worker(server.rt)
        with server.rt.transaction() as session:
            rows = session.query(OutboxItem).filter(OutboxItem.kind.in_(("lid", "lid_sync"))).all()
            for row in rows:
                session.expunge(row)
        server.worker.stop()
        for row in rows:
            worker.steps[row.kind](server.rt, row)
        assert google.document_text(doc_id) == body
    finally:
        google.close()
