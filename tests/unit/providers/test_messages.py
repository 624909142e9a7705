from __future__ import annotations

import html.parser

import pytest

from providers import messages
from providers.base import EVENTS
from tests.unit.providers.conftest import make_notification


def test_summary_line_created(notification):
    assert (
        messages.summary_line(notification)
        == "🔴 [SEV1_CRITICAL] INC-A1B2C3 Redis primary unreachable - redis-prod: created"
    )
    assert messages.summary_line(notification, emoji=False).startswith("[SEV1_CRITICAL] INC-")


@pytest.mark.parametrize(
    ("event", "ending"),
    [
        ("created", ": created"),
        ("acknowledged", ": acknowledged"),
        ("mitigated", ": mitigated"),
        ("severity_changed", ": severity changed"),
        ("resolved", ": resolved"),
        ("reopened", ": reopened"),
        ("escalated", ": escalated"),
        ("status_update", ": status update"),
        ("page", ": paging on-call"),
        ("test", ": test notification"),
        ("something_new", ": something new"),
    ],
)
def test_summary_wording_per_event(event, ending):
    assert messages.summary_line(make_notification(event)).endswith(ending)


def test_every_known_event_has_a_label():
    assert set(EVENTS) <= set(messages.EVENT_LABELS)


def test_severity_emoji_and_unknown_severity():
    assert messages.summary_line(make_notification(severity="SEV2_HIGH")).startswith("🟠 ")
    n = make_notification(severity="SEV9_WEIRD")
    assert messages.summary_line(n).startswith("⚪ [SEV9_WEIRD]")
    assert messages.severity_color("SEV9_WEIRD") == messages.DEFAULT_COLOR


def test_text_body_has_all_facts_and_links():
    n = make_notification("status_update", text="Failover to replica in progress")
    body = messages.text_body(n)
    for expected in (
        "Title: Redis primary unreachable",
        "Severity: SEV1_CRITICAL",
        "Status: TRIGGERED",
        "Service: redis-prod",
        "Team: SRE Core",
        "Lead: Alice Martin",
        "By: Bob Durand",
        "Status update:\nFailover to replica in progress",
        "All writes to redis-prod fail",
        "- Incident: https://imas.example.com/incidents/INC-A1B2C3",
        "- LID: https://docs.google.com/document/d/lid-a1b2c3/edit",
        "- Runbook: https://wiki.example.com/runbooks/redis",
        "- War room: https://example.slack.com/archives/C0WARROOM01",
    ):
        assert expected in body


def test_text_body_optional_fields_missing():
    n = make_notification(
        lead_name=None,
        lead_email=None,
        runbook_url=None,
        lid_url=None,
        war_room_url=None,
        war_room_channel_id=None,
        description="",
        actor=None,
    )
    body = messages.text_body(n)
    assert "Lead: unassigned" in body
    assert "LID" not in body and "Runbook" not in body and "War room" not in body
    assert "By:" not in body and "Description" not in body


def test_resolution_summary_used_for_resolved():
    n = make_notification(
        "resolved", resolution_summary="Replaced the failed node", status="RESOLVED"
    )
    assert "Resolution summary:\nReplaced the failed node" in messages.text_body(n)
    explicit = make_notification("resolved", text="Explicit words", resolution_summary="other")
    assert "Explicit words" in messages.text_body(explicit)


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [v for k, v in attrs if k == "href"]

    def handle_data(self, data):
        self.text.append(data)


def test_html_body_escapes_everything():
    n = make_notification(
        "status_update",
        title="<script>alert(1)</script> & co",
        description='<img src=x onerror="x">',
        text="a < b > c",
        runbook_url='javascript:alert("x")',
        lid_url='https://docs.example.com/d?a=1&b="2"',
    )
    out = messages.html_body(n)
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in out
    parser = _Collector()
    parser.feed(out)
    assert "script" not in parser.tags and "img" not in parser.tags
    # only http(s) links become anchors; quotes in the URL stay inside the attribute
    assert 'https://docs.example.com/d?a=1&b="2"' in parser.hrefs
    assert all(h.startswith("https://") for h in parser.hrefs)
    assert 'javascript:alert("x")' in "".join(parser.text)
    assert "#D32F2F" in out


@pytest.mark.parametrize("event", EVENTS)
def test_sms_text_is_at_most_160_chars(event):
    long = make_notification(event, title="x" * 400, text="y" * 400, service_name="s" * 50)
    assert len(messages.sms_text(long)) <= 160
    short = messages.sms_text(make_notification(event))
    assert len(short) <= 160
    assert short.startswith("[SEV1] INC-A1B2C3 ")
    assert "🔴" not in short


def test_sms_text_content():
    text = messages.sms_text(make_notification())
    assert text == (
        "[SEV1] INC-A1B2C3 created: Redis primary unreachable - redis-prod "
        "https://imas.example.com/incidents/INC-A1B2C3"
    )
    resolved = messages.sms_text(make_notification("resolved", text="Node replaced"))
    assert "| Node replaced" in resolved and len(resolved) <= 160


def test_sms_drops_url_when_too_long():
    n = make_notification(incident_url="https://imas.example.com/" + "p" * 150)
    text = messages.sms_text(n)
    assert "https://" not in text
    assert "Redis primary unreachable" in text


def test_truncate():
    assert messages.truncate("abc", 3) == "abc"
    assert messages.truncate("abcdef", 4) == "abc…"
    assert len(messages.truncate("a" * 5000, 1024)) == 1024
    assert messages.truncate("abc", 0) == ""
    assert messages.truncate("abcdef", 5, "...") == "ab..."
    assert messages.truncate("abcdef", 2, "...") == "ab"


def test_incident_dict_iso_dates(incident):
    data = messages.incident_dict(incident)
    assert data["created_at"] == "2024-05-17T09:30:00Z"
    assert data["short_id"] == "INC-A1B2C3"
    assert set(data) >= {"id", "title", "severity", "war_room_url", "private", "lid_state"}


def test_validate_http_url_never_echoes_value():
    with pytest.raises(ValueError) as err:
        messages.validate_http_url("ftp://secret-token-value")
    assert "secret-token-value" not in str(err.value)
    assert messages.validate_http_url(" https://x.example/a ") == "https://x.example/a"
