"""GoogleDocsLid against FakeGoogle: real JWT exchange, real googleapiclient, real sockets."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from bot.settings import load_settings
from providers.google_docs import (
    PLACEHOLDERS,
    GoogleDocsLid,
    TimelineLine,
    doctor_checks,
    end_marker,
    start_marker,
)
from tests.fakes.google_api import FakeGoogle, make_service_account
from tests.unit.providers.conftest import make_incident

SA_EMAIL = "imas-bot@imas-test.iam.gserviceaccount.com"
TEMPLATE_ID = "tmpl-lid-0001"
FOLDER_ID = "folder-incidents"
TEMPLATE = """{{INCIDENT_ID}} — {{INCIDENT_TITLE}}
Severity: {{SEVERITY}} | Status: {{STATUS}}
Service: {{SERVICE_NAME}} (team {{TEAM_NAME}})
Declared: {{CREATED_AT}}
Lead: {{LEAD_NAME}} <{{LEAD_EMAIL}}>
Links: {{INCIDENT_URL}} · war room {{WAR_ROOM_URL}} · runbook {{RUNBOOK_URL}}
Summary
{{DESCRIPTION}}
COMMUNICATION
INVESTIGATION NOTES
POST-MORTEM
"""
T0 = datetime(2024, 5, 17, 9, 30, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        server.add_folder(FOLDER_ID, shared_drive=True)
        server.add_template(TEMPLATE_ID, TEMPLATE)
        yield server


@pytest.fixture
def sa_info(fake: FakeGoogle) -> dict[str, Any]:
    return make_service_account(fake, SA_EMAIL)


def make_lid(fake: FakeGoogle, info: dict[str, Any], **overrides: Any) -> GoogleDocsLid:
    values: dict[str, Any] = {
        "google_service_account_json": json.dumps(info),
        "google_api_endpoint": fake.url,
        "google_token_uri": fake.token_uri,
        "google_lid_template_id": TEMPLATE_ID,
        "google_drive_folder_id": FOLDER_ID,
        "google_drive_domain": "example.com",
        # the stand-in Google listens on 127.0.0.1, which the address guard refuses
        "allow_private_webhook_targets": True,
    }
    values.update(overrides)
    lid = GoogleDocsLid.from_settings(load_settings(**values))
    assert lid is not None
    return lid


@pytest.fixture
def lid(fake: FakeGoogle, sa_info: dict[str, Any]) -> GoogleDocsLid:
    return make_lid(fake, sa_info)


def docs_with_key(fake: FakeGoogle, key: str) -> list[dict[str, Any]]:
    return [f for f in fake.files.values() if f["appProperties"].get("imasKey") == key]


def outside_regions(text: str) -> list[str]:
    """The document's lines with the content of every IMAS region left out."""
    kept: list[str] = []
    inside: str | None = None
    for line in text.splitlines():
        if inside is None:
            kept.append(line)
            match = re.search(r"⟦imas:(\w+)⟧", line)
            inside = match.group(1) if match else None
        elif end_marker(inside) in line:
            kept.append(line)
            inside = None
    return kept


def region_lines(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if start_marker(name) in line)
    end = next(i for i, line in enumerate(lines) if end_marker(name) in line)
    return lines[start + 1 : end]


# ------------------------------------------------------------------ creation


def test_create_from_template_fills_places_and_shares(fake: FakeGoogle, lid: GoogleDocsLid) -> None:
    incident = make_incident(runbook_url=None)
    doc = lid.create_document(incident, idempotency_key="lid:42", team_email="sre-core@example.com")

    assert doc.created and not doc.warnings
    assert doc.url.startswith(f"https://docs.google.com/document/d/{doc.document_id}/")
    text = fake.document_text(doc.document_id)
    assert "{{" not in text and "}}" not in text
    assert text.startswith("INC-A1B2C3 — Redis primary unreachable\n")
    assert "Severity: SEV1_CRITICAL | Status: TRIGGERED" in text
    assert "Service: redis-prod (team SRE Core)" in text
    assert "Declared: 2024-05-17 09:30:00 UTC" in text
    assert "Lead: Alice Martin <alice@example.com>" in text
    assert "runbook —" in text  # empty value
    assert "All writes to redis-prod fail with connection refused." in text
    # The template has its own {{STATUS}} place: no IMAS status section; it has no
    # TIMELINE / RESOLUTION heading, so those IMAS sections follow the template's text.
    assert "IMAS STATUS" not in text
    assert text.index("POST-MORTEM") < text.index("TIMELINE (IMAS)")
    for heading in ("TIMELINE (IMAS)", "RESOLUTION (IMAS)"):
        assert text.count(heading) == 1
    assert ("imas.STATUS", "TRIGGERED") in fake.named_ranges(doc.document_id)
    assert ("imas.LEAD_EMAIL", "alice@example.com") in fake.named_ranges(doc.document_id)

    meta = fake.files[doc.document_id]
    assert meta["name"] == "INC-A1B2C3 | Redis primary unreachable"
    assert meta["parents"] == [FOLDER_ID]
    assert meta["driveId"] == fake.files[FOLDER_ID]["driveId"]
    assert meta["appProperties"] == {"imasKey": "lid:42", "imasIncident": "INC-A1B2C3"}

    perms = {
        (p["type"], p["role"], p.get("emailAddress") or p.get("domain"))
        for p in fake.permissions(doc.document_id)
    }
    assert perms == {
        ("user", "writer", "alice@example.com"),
        ("group", "writer", "sre-core@example.com"),
        ("domain", "reader", "example.com"),
    }
    assert not any(p["notified"] for p in fake.permissions(doc.document_id))

    # The real JWT-bearer exchange happened, and every API call carried its token.
    token_calls = fake.calls_matching(r"^POST /token$")
    assert len(token_calls) == 1
    assert token_calls[0].body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    api_calls = [c for c in fake.calls if c.path != "/token"]
    assert api_calls and all(
        c.headers["authorization"].startswith("Bearer ya29.") for c in api_calls
    )
    copy = fake.calls_matching(r"/copy$")[0]
    assert copy.query["supportsAllDrives"] == "true"


def test_template_markers_are_reused_not_duplicated(fake: FakeGoogle, lid: GoogleDocsLid) -> None:
    fake.add_template(
        TEMPLATE_ID,
        "{{INCIDENT_ID}}\nTimeline\n⟦imas:timeline⟧\n⟦/imas:timeline⟧\nNotes\n",
    )
    doc = lid.create_document(make_incident(), idempotency_key="k", team_email=None)
    text = fake.document_text(doc.document_id)
    assert text.count(start_marker("timeline")) == 1
    assert "TIMELINE (IMAS)" not in text
    assert "IMAS STATUS" in text and "RESOLUTION (IMAS)" in text
    lid.append_timeline(doc.document_id, [TimelineLine("e1", T0, "CREATED", "declared")])
    assert region_lines(fake.document_text(doc.document_id), "timeline") == [
        "2024-05-17 09:30:00 UTC · CREATED · declared ⟦ev:e1⟧"
    ]


def test_create_from_scratch_has_every_seed_section(
    fake: FakeGoogle, sa_info: dict[str, Any]
) -> None:
    lid = make_lid(fake, sa_info, google_lid_template_id=None)
    doc = lid.create_document(make_incident(), idempotency_key="k-scratch", team_email=None)
    assert not fake.calls_matching(r"/copy$")
    meta = fake.files[doc.document_id]
    assert meta["mimeType"] == "application/vnd.google-apps.document"
    assert meta["name"] == "INC-A1B2C3 | Redis primary unreachable"
    assert meta["parents"] == [FOLDER_ID]

    lines = fake.document_text(doc.document_id).splitlines()
    assert lines[0] == "INC-A1B2C3 | Redis primary unreachable"
    for expected in (
        "Incident: INC-A1B2C3",
        "Title: Redis primary unreachable",
        "Severity (declared): SEV1_CRITICAL",
        "Status (declared): TRIGGERED",
        "Service: redis-prod",
        "Team: SRE Core",
        "Lead (declared): Alice Martin <alice@example.com>",
        "Created: 2024-05-17 09:30:00 UTC",
        "Incident page: https://imas.example.com/incidents/INC-A1B2C3",
        "War room: https://example.slack.com/archives/C0WARROOM01",
        "Runbook: https://wiki.example.com/runbooks/redis",
    ):
        assert expected in lines
    sections = [
        "Incident details",
        "IMAS STATUS",
        "COMMUNICATION",
        "INVESTIGATION NOTES",
        "RESOLUTION",
        "TIMELINE",
        "POST-MORTEM",
        "Root cause",
        "Contributing factors",
        "Action items",
    ]
    positions = [lines.index(s) for s in sections]
    assert positions == sorted(positions)
    for name in ("status", "timeline", "resolution"):
        assert sum(start_marker(name) in line for line in lines) == 1
    # Headings were styled in the same batch; the fake validated every range.
    batch = fake.calls_matching(r":batchUpdate$")[0].body
    styles = [r["updateParagraphStyle"] for r in batch["requests"] if "updateParagraphStyle" in r]
    assert {"TITLE", "HEADING_1", "HEADING_2"} <= {
        s["paragraphStyle"]["namedStyleType"] for s in styles
    }
    assert batch["writeControl"]["requiredRevisionId"]


def test_private_incident_is_not_shared_with_the_domain(
    fake: FakeGoogle, lid: GoogleDocsLid
) -> None:
    doc = lid.create_document(make_incident(private=True), idempotency_key="k", team_email=None)
    assert [p["type"] for p in fake.permissions(doc.document_id)] == ["user"]


# ------------------------------------------------------------------ idempotency and faults


def test_lost_copy_response_then_retry_makes_exactly_one_document(
    fake: FakeGoogle, lid: GoogleDocsLid
) -> None:
    fake.inject(r"^POST /drive/v3/files/[^/]+/copy$", drop_response=True)
    with pytest.raises(RetryableProviderError):
        lid.create_document(make_incident(), idempotency_key="lid:42", team_email=None)
    assert len(docs_with_key(fake, "lid:42")) == 1  # the copy happened, the answer was lost
    assert len(fake.calls_matching(r"/copy$")) == 1  # and the transport did not re-send it

    doc = lid.create_document(make_incident(), idempotency_key="lid:42", team_email=None)
    assert not doc.created
    (only,) = docs_with_key(fake, "lid:42")
    assert doc.document_id == only["id"]
    assert len(fake.calls_matching(r"/copy$")) == 1
    assert "{{" not in fake.document_text(doc.document_id)


@pytest.mark.parametrize(
    "pattern",
    [
        r"/copy$",
        r":batchUpdate$",
        r"^GET /v1/documents/",
        r"^POST .*/permissions$",
        r"^GET /drive/v3/files$",
    ],
)
def test_server_error_once_is_retryable_then_the_retry_completes(
    fake: FakeGoogle, lid: GoogleDocsLid, pattern: str
) -> None:
    fake.inject(pattern, status=503, retry_after=7)
    with pytest.raises(RetryableProviderError) as info:
        lid.create_document(make_incident(), idempotency_key="k", team_email="sre@example.com")
    assert info.value.retry_after == 7
    assert info.value.code is not None and info.value.code.startswith("HTTP 503")

    doc = lid.create_document(make_incident(), idempotency_key="k", team_email="sre@example.com")
    assert len(docs_with_key(fake, "k")) == 1
    text = fake.document_text(doc.document_id)
    assert "{{" not in text and text.count("TIMELINE (IMAS)") == 1
    assert [n for n, _ in fake.named_ranges(doc.document_id)].count("imas.STATUS") == 1
    assert len(fake.permissions(doc.document_id)) == 3


@pytest.mark.parametrize(
    ("status", "reason"), [(429, None), (403, "userRateLimitExceeded"), (500, None)]
)
def test_rate_limits_and_5xx_are_retryable(
    fake: FakeGoogle, lid: GoogleDocsLid, status: int, reason: str | None
) -> None:
    fake.inject(r"/copy$", status=status, reason=reason)
    with pytest.raises(RetryableProviderError):
        lid.create_document(make_incident(), idempotency_key="k", team_email=None)


def test_repeat_creates_no_duplicate_permissions(fake: FakeGoogle, lid: GoogleDocsLid) -> None:
    for _ in range(2):
        doc = lid.create_document(
            make_incident(), idempotency_key="k", team_email="sre@example.com"
        )
    assert len(fake.calls_matching(r"^POST .*/permissions$")) == 3
    assert len(fake.permissions(doc.document_id)) == 3
    assert len(fake.calls_matching(r":batchUpdate$")) == 2  # fill + sections, once


@pytest.mark.parametrize("status", [403, 404])
def test_template_not_shared_is_permanent_and_names_the_service_account(
    fake: FakeGoogle, lid: GoogleDocsLid, sa_info: dict[str, Any], status: int
) -> None:
    fake.deny(TEMPLATE_ID, status=status)
    with pytest.raises(PermanentProviderError) as info:
        lid.create_document(make_incident(), idempotency_key="k", team_email=None)
    exc = info.value
    assert SA_EMAIL in str(exc) and exc.hint is not None and SA_EMAIL in exc.hint
    assert "share the LID template" in exc.describe()
    key_body = sa_info["private_key"].splitlines()[1]
    for text in (str(exc), exc.describe(), repr(exc)):
        assert "PRIVATE KEY" not in text and key_body not in text
    assert not docs_with_key(fake, "k")


def test_unknown_request_field_is_rejected_like_google(
    fake: FakeGoogle, lid: GoogleDocsLid
) -> None:
    doc = lid.create_document(make_incident(), idempotency_key="k", team_email=None)
    with pytest.raises(PermanentProviderError) as info:
        lid._batch(doc.document_id, [{"replaceAllTxt": {"replaceText": "x"}}], None)
    assert 'Unknown name "replaceAllTxt"' in info.value.message
    assert info.value.code == "HTTP 400 badRequest"


# ------------------------------------------------------------------ credentials


def test_rejected_key_is_permanent_with_a_credentials_hint(
    fake: FakeGoogle, sa_info: dict[str, Any]
) -> None:
    other = make_service_account(fake, "other@x.iam.gserviceaccount.com")
    forged = dict(sa_info, private_key=other["private_key"])  # right account, wrong key
    lid = make_lid(fake, forged)
    with pytest.raises(PermanentProviderError) as info:
        lid.create_document(make_incident(), idempotency_key="k", team_email=None)
    assert info.value.code == "invalid_credentials"
    assert "Invalid JWT Signature" in info.value.message
    assert info.value.hint is not None and "service-account key" in info.value.hint
    assert forged["private_key"].splitlines()[1] not in info.value.describe()


def test_unreachable_token_endpoint_is_retryable(fake: FakeGoogle, sa_info: dict[str, Any]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lid = make_lid(fake, sa_info, google_token_uri=f"http://127.0.0.1:{port}/token")
    with pytest.raises(RetryableProviderError):
        lid.create_document(make_incident(), idempotency_key="k", team_email=None)


def test_expired_token_is_refreshed_transparently(fake: FakeGoogle, lid: GoogleDocsLid) -> None:
    doc = lid.create_document(make_incident(), idempotency_key="k", team_email=None)
    fake.expire_tokens()
    assert lid.write_resolution(doc.document_id, "Failover to replica.")
    assert len(fake.calls_matching(r"^POST /token$")) == 2


# ------------------------------------------------------------------ living document


@pytest.fixture
def doc_id(lid: GoogleDocsLid) -> str:
    return lid.create_document(make_incident(), idempotency_key="k", team_email=None).document_id


def test_sync_header_twice_is_stable(fake: FakeGoogle, lid: GoogleDocsLid, doc_id: str) -> None:
    acked = make_incident(
        status="ACKNOWLEDGED",
        severity="SEV2_HIGH",
        lead_name="Bob Durand",
        lead_email="bob@example.com",
    )
    assert lid.sync_header(doc_id, acked, now=T0 + timedelta(minutes=5))
    after_first = fake.document_text(doc_id)
    # Rewritten in place, in the template's own lines.
    assert "Severity: SEV2_HIGH | Status: ACKNOWLEDGED\n" in after_first
    assert "Lead: Bob Durand <bob@example.com>\n" in after_first
    writes = len(fake.calls_matching(r":batchUpdate$"))
    assert not lid.sync_header(doc_id, acked, now=T0 + timedelta(minutes=6))
    assert fake.document_text(doc_id) == after_first
    assert len(fake.calls_matching(r":batchUpdate$")) == writes
    assert start_marker("status") not in after_first


def test_append_timeline_is_idempotent_and_chronological(
    fake: FakeGoogle, lid: GoogleDocsLid, doc_id: str
) -> None:
    e1 = TimelineLine("101", T0, "CREATED", "Incident declared", "Alice Martin")
    e2 = TimelineLine(
        "102", T0 + timedelta(minutes=1), "ALERT_SENT", "Notification sent to Slack (SRE Core)"
    )
    e3 = TimelineLine("103", T0 + timedelta(minutes=2), "DOCUMENT_CREATED", "LID document created")
    assert lid.append_timeline(doc_id, [e3, e1]) == 2
    assert lid.append_timeline(doc_id, [e1, e2, e3]) == 1  # e2 arrives late, goes in between
    expected = [
        "2024-05-17 09:30:00 UTC · CREATED · Incident declared · Alice Martin ⟦ev:101⟧",
        "2024-05-17 09:31:00 UTC · ALERT_SENT · Notification sent to Slack (SRE Core) ⟦ev:102⟧",
        "2024-05-17 09:32:00 UTC · DOCUMENT_CREATED · LID document created ⟦ev:103⟧",
    ]
    text = fake.document_text(doc_id)
    assert region_lines(text, "timeline") == expected

    writes = len(fake.calls_matching(r":batchUpdate$"))
    assert lid.append_timeline(doc_id, [e1, e2, e3]) == 0
    assert fake.document_text(doc_id) == text
    assert len(fake.calls_matching(r":batchUpdate$")) == writes

    e4 = TimelineLine("104", T0 + timedelta(minutes=3), "NOTE", "multi\nline ⟦ev:999⟧ 🟢")
    assert lid.append_timeline(doc_id, [e4]) == 1
    assert region_lines(fake.document_text(doc_id), "timeline")[-1] == (
        "2024-05-17 09:33:00 UTC · NOTE · multi line [ev:999] 🟢 ⟦ev:104⟧"
    )


def test_write_resolution_is_idempotent_and_replaces(
    fake: FakeGoogle, lid: GoogleDocsLid, doc_id: str
) -> None:
    assert lid.write_resolution(doc_id, "Failed over to the replica.\nRoot cause: disk full.")
    text = fake.document_text(doc_id)
    assert region_lines(text, "resolution") == [
        "Failed over to the replica.",
        "Root cause: disk full.",
    ]
    assert not lid.write_resolution(doc_id, "Failed over to the replica.\nRoot cause: disk full.")
    assert fake.document_text(doc_id) == text
    assert lid.write_resolution(doc_id, "Corrected summary.")
    assert region_lines(fake.document_text(doc_id), "resolution") == ["Corrected summary."]


def test_human_text_outside_markers_survives_every_imas_write(
    fake: FakeGoogle, lid: GoogleDocsLid, doc_id: str
) -> None:
    text = fake.document_text(doc_id)
    text = text.replace("COMMUNICATION\n", "COMMUNICATION\n10:02 status page updated 🟡 by Bob\n")
    text = text.replace(start_marker("timeline"), start_marker("timeline") + " (do not edit)")
    text += "Scribble at the end 👀\n"
    fake.edit_document(doc_id, text)
    before = outside_regions(fake.document_text(doc_id))

    lid.sync_header(doc_id, make_incident(status="MITIGATED"))
    lid.append_timeline(doc_id, [TimelineLine("1", T0, "CREATED", "declared 🔴")])
    lid.write_resolution(doc_id, "Fixed 🟢")
    lid.append_timeline(doc_id, [TimelineLine("2", T0 + timedelta(seconds=30), "NOTE", "more")])
    lid.sync_header(doc_id, make_incident(status="RESOLVED"))

    after = fake.document_text(doc_id)
    # Only the template's live value changed outside the IMAS regions.
    assert outside_regions(after) == [
        line.replace("Status: TRIGGERED", "Status: RESOLVED") for line in before
    ]
    assert after.endswith("Scribble at the end 👀\n")
    assert region_lines(after, "resolution") == ["Fixed 🟢"]
    assert "Severity: SEV1_CRITICAL | Status: RESOLVED\n" in after


def test_concurrent_human_edit_makes_imas_reread_instead_of_clobbering(
    fake: FakeGoogle, lid: GoogleDocsLid, doc_id: str
) -> None:
    def human_types_at_the_top() -> None:
        fake.edit_document(
            doc_id, "Bridge call: https://meet.example.com/abc\n" + fake.document_text(doc_id)
        )

    fake.inject(r":batchUpdate$", status=None, action=human_types_at_the_top)
    assert lid.write_resolution(doc_id, "Rolled back the deploy.")
    text = fake.document_text(doc_id)
    assert text.startswith("Bridge call: https://meet.example.com/abc\nINC-A1B2C3 — ")
    assert region_lines(text, "resolution") == ["Rolled back the deploy."]
    rejected = fake.calls_matching(r":batchUpdate$")[-2:]
    assert rejected[0].body["writeControl"] != rejected[1].body["writeControl"]


def test_a_region_deleted_by_a_human_is_appended_again(
    fake: FakeGoogle, lid: GoogleDocsLid, doc_id: str
) -> None:
    text = fake.document_text(doc_id)
    kept = [
        line
        for line in text.splitlines()
        if "imas:timeline" not in line and line != "TIMELINE (IMAS)"
    ]
    fake.edit_document(doc_id, "\n".join(kept) + "\nLast human line\n")
    assert lid.append_timeline(doc_id, [TimelineLine("1", T0, "CREATED", "declared")]) == 1
    after = fake.document_text(doc_id)
    assert after.count("TIMELINE (IMAS)") == 1
    assert after.index("Last human line") < after.index("TIMELINE (IMAS)")
    assert region_lines(after, "timeline") == [
        "2024-05-17 09:30:00 UTC · CREATED · declared ⟦ev:1⟧"
    ]


# ------------------------------------------------------------------ doctor


def test_check_reports_token_template_and_folder(fake: FakeGoogle, lid: GoogleDocsLid) -> None:
    results = lid.check()
    assert [r.ok for r in results] == [True, True, True]
    assert SA_EMAIL in results[0].detail
    assert "shared drive" in results[2].detail

    fake.add_folder("read-only", writable=False)
    fake.deny(TEMPLATE_ID)
    results = make_lid(
        fake, make_service_account(fake, SA_EMAIL), google_drive_folder_id="read-only"
    ).check()
    assert [r.ok for r in results] == [True, False, False]
    assert SA_EMAIL in results[1].detail and SA_EMAIL in results[2].detail


def test_check_with_rejected_key_stops_at_the_token(
    fake: FakeGoogle, sa_info: dict[str, Any]
) -> None:
    other = make_service_account(fake, "other@x.iam.gserviceaccount.com")
    results = make_lid(fake, dict(sa_info, private_key=other["private_key"])).check()
    assert len(results) == 1 and not results[0].ok
    assert "Invalid JWT Signature" in results[0].detail


def test_doctor_without_google_is_a_single_not_configured_entry() -> None:
    results = doctor_checks(
        load_settings(google_service_account_json=None, google_service_account_file=None)
    )
    assert len(results) == 1 and "not configured" in results[0].detail


def test_placeholder_list_matches_the_brief() -> None:
    assert len(PLACEHOLDERS) == 18 and len(set(PLACEHOLDERS)) == 18


# ------------------------------------------------------------------ the team's own template

SEED_TEMPLATE = """INCIDENT {{INCIDENT_ID}} — {{INCIDENT_TITLE}}
Status: {{STATUS}}
Severity: {{SEVERITY}}
Incident lead: {{LEAD_NAME}} ({{LEAD_EMAIL}})
Resolved at: {{RESOLVED_AT}} (time to resolve: {{TIME_TO_RESOLVE}})
DESCRIPTION
{{DESCRIPTION}}
Timeline
RESOLUTION
POST-MORTEM
"""


def section(text: str, heading: str, following: str) -> list[str]:
    lines = text.splitlines()
    return lines[lines.index(heading) + 1 : lines.index(following)]


def test_seed_template_lives_in_its_own_places(fake: FakeGoogle, lid: GoogleDocsLid) -> None:
    fake.add_template(TEMPLATE_ID, SEED_TEMPLATE)
    doc_id = lid.create_document(make_incident(), idempotency_key="k", team_email=None).document_id
    text = fake.document_text(doc_id)
    assert "IMAS" not in text and "⟦" not in text  # every place exists in the template
    assert "Status: TRIGGERED\n" in text
    assert "Resolved at: — (time to resolve: —)\n" in text

    # A human writes between the sections.
    fake.edit_document(
        doc_id,
        text.replace("Timeline\n", "Human note before the timeline\nTimeline\n").replace(
            "POST-MORTEM\n", "POST-MORTEM\nWritten by Bob, keep me\n"
        ),
    )
    e1 = TimelineLine("1", T0, "CREATED", "declared")
    e2 = TimelineLine("2", T0 + timedelta(minutes=2), "STATUS_CHANGED", "to ACKNOWLEDGED")
    e3 = TimelineLine("3", T0 + timedelta(minutes=1), "NOTE", "late note")
    assert lid.append_timeline(doc_id, [e1, e2]) == 2
    assert lid.append_timeline(doc_id, [e1, e2, e3]) == 1  # goes in between
    resolved = make_incident(status="RESOLVED", resolved_at=T0 + timedelta(minutes=65, seconds=5))
    assert lid.sync_header(doc_id, resolved)
    assert lid.write_resolution(doc_id, "Failed over.\nRoot cause: disk full.")

    text = fake.document_text(doc_id)
    assert "Status: RESOLVED\n" in text and "Status: TRIGGERED" not in text
    assert "Resolved at: 2024-05-17 10:35:05 UTC (time to resolve: 1h 05m 05s)\n" in text
    assert section(text, "Timeline", "RESOLUTION") == [
        "2024-05-17 09:30:00 UTC · CREATED · declared",
        "2024-05-17 09:31:00 UTC · NOTE · late note",
        "2024-05-17 09:32:00 UTC · STATUS_CHANGED · to ACKNOWLEDGED",
    ]
    assert section(text, "RESOLUTION", "POST-MORTEM") == ["Failed over.", "Root cause: disk full."]
    assert "Human note before the timeline\nTimeline\n" in text
    assert "POST-MORTEM\nWritten by Bob, keep me\n" in text
    assert "IMAS" not in text and "⟦" not in text

    # Replays write nothing.
    writes = len(fake.calls_matching(r":batchUpdate$"))
    assert lid.append_timeline(doc_id, [e1, e2, e3]) == 0
    assert not lid.sync_header(doc_id, resolved)
    assert not lid.write_resolution(doc_id, "Failed over.\nRoot cause: disk full.")
    assert len(fake.calls_matching(r":batchUpdate$")) == writes
    # A corrected summary replaces the old one in place.
    assert lid.write_resolution(doc_id, "Corrected.")
    assert section(fake.document_text(doc_id), "RESOLUTION", "POST-MORTEM") == ["Corrected."]

    # The post-mortem goes under the template's POST-MORTEM heading, above human text.
    assert lid.write_postmortem(doc_id, ["Summary", "x"])
    assert not lid.write_postmortem(doc_id, ["Summary", "x"])
    assert fake.document_text(doc_id).endswith("POST-MORTEM\nSummary\nx\nWritten by Bob, keep me\n")


def test_heading_names_are_configurable(fake: FakeGoogle, sa_info: dict[str, Any]) -> None:
    fake.add_template(TEMPLATE_ID, "Statut : {{STATUS}}\n2. Chronologie :\nNotes\n")
    lid = make_lid(fake, sa_info, google_lid_timeline_headings="Chronologie, Journal")
    doc_id = lid.create_document(make_incident(), idempotency_key="k", team_email=None).document_id
    lid.append_timeline(doc_id, [TimelineLine("1", T0, "CREATED", "declared")])
    text = fake.document_text(doc_id)
    assert "2. Chronologie :\n2024-05-17 09:30:00 UTC · CREATED · declared\nNotes\n" in text
    assert "TIMELINE (IMAS)" not in text and "RESOLUTION (IMAS)" in text


def test_template_value_edit_during_sync_is_reread(fake: FakeGoogle, lid: GoogleDocsLid) -> None:
    fake.add_template(TEMPLATE_ID, SEED_TEMPLATE)
    doc_id = lid.create_document(make_incident(), idempotency_key="k", team_email=None).document_id

    def human_types_at_the_top() -> None:
        fake.edit_document(
            doc_id, "Bridge: https://meet.example.com\n" + fake.document_text(doc_id)
        )

    fake.inject(r":batchUpdate$", status=None, action=human_types_at_the_top)
    assert lid.append_timeline(doc_id, [TimelineLine("1", T0, "CREATED", "declared")]) == 1
    text = fake.document_text(doc_id)
    assert text.startswith("Bridge: https://meet.example.com\nINCIDENT ")
    assert "Timeline\n2024-05-17 09:30:00 UTC · CREATED · declared\nRESOLUTION\n" in text
