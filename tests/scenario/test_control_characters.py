"""Issue 10 item 8: control characters in titles, names and header-bound fields are
refused at every door with an error naming the field, alerts are normalised, and an
incident whose title holds CR/LF (stored before this rule) still gets its e-mails."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select, update

from bot import config_file
from bot.domain.errors import ConfigError
from bot.domain.text import clean_text, control_character
from bot.steps import make_worker
from storage import auth
from storage.models import Incident, TimelineEvent
from tests.api_helpers import api_fixture, row_counts
from tests.scenario.test_all_providers import build, declare_sev1, deliveries, receivers
from tests.scenario.test_seed_guide import apply_seed_config

__all__ = ["receivers"]  # the fixture, used by name

SINGLE_LINE_BAD = ["a\rb", "a\nb", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b", "a\x0bb", "a\tb"]
MULTI_LINE_BAD = ["a\x07b", "a\x1bb", "a\x9bb", "a\u2029b"]


def test_the_rule_itself():
    for value in SINGLE_LINE_BAD:
        assert control_character(value) is not None, repr(value)
        assert control_character(clean_text(value)) is None
    for value in MULTI_LINE_BAD:
        assert control_character(value, multiline=True) is not None, repr(value)
    assert control_character("line 1\r\nline 2\twith tab", multiline=True) is None
    assert control_character("Café ✓ 日本") is None


@pytest.fixture
def rest(start_server, tmp_path, database_url):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    with server.rt.transaction() as session:
        token = auth.create_token(session, name="rest", role="admin")[1]
    return server, f"http://127.0.0.1:{server.port}", {"Authorization": f"Token {token}"}


def test_rest_refuses_control_characters_naming_the_field(rest):
    server, base, headers = rest
    ok = requests.post(
        f"{base}/api/v1/incidents/",
        json={"title": "Redis", "service": "redis-prod", "severity": "SEV3"},
        headers=headers,
        timeout=10,
    )
    assert ok.status_code == 201
    url = f"{base}/api/v1/incidents/{ok.json()['short_id']}/"
    before = row_counts(server.rt)
    for bad in SINGLE_LINE_BAD:
        created = requests.post(
            f"{base}/api/v1/incidents/",
            json={"title": f"Redis {bad}", "service": "redis-prod", "severity": "SEV3"},
            headers=headers,
            timeout=10,
        )
        assert created.status_code == 400, (bad, created.text)
        assert created.json()["field"] == "title" and "control" in created.json()["detail"]
        patched = requests.patch(url, json={"title": bad}, headers=headers, timeout=10)
        assert patched.status_code == 400 and patched.json()["field"] == "title"
        lead = requests.patch(
            url, json={"lead": f"x@example.com{bad}"}, headers=headers, timeout=10
        )
        assert lead.status_code == 400 and lead.json()["field"] == "lead"
    for bad in MULTI_LINE_BAD:
        created = requests.post(
            f"{base}/api/v1/incidents/",
            json={
                "title": "Redis",
                "description": bad,
                "service": "redis-prod",
                "severity": "SEV3",
            },
            headers=headers,
            timeout=10,
        )
        assert created.status_code == 400 and created.json()["field"] == "description"
        note = requests.post(url + "notes/", json={"text": bad}, headers=headers, timeout=10)
        assert note.status_code == 400 and note.json()["field"] == "text"
    after = row_counts(server.rt)  # the outbox worker may add delivery rows meanwhile
    assert after["incidents"] == before["incidents"]
    with server.rt.transaction() as session:
        notes = session.scalars(select(TimelineEvent).where(TimelineEvent.type == "NOTE")).all()
        assert notes == []
    # multi-line text keeps its line breaks and tabs
    note = requests.post(
        url + "notes/", json={"text": "line 1\r\nline 2\tend"}, headers=headers, timeout=10
    )
    assert note.status_code == 201, note.text


def test_slack_modal_shows_the_error_on_the_title(
    start_server, driver, fake_slack, tmp_path, database_url
):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    slack = driver(server)
    slack.slash("")
    fake_slack.wait_for("views.open")
    response = slack.submit_view(
        fake_slack.last_view(),
        {"title": "Redis\r\nBcc: x@evil.example", "service": "redis-prod", "severity": "SEV2_HIGH"},
    )
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    assert "control" in response.json()["errors"]["title"]
    assert row_counts(server.rt)["incidents"] == 0


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("- name: redis-prod", '- name: "redis\\r\\nprod"', "services[0].name"),
        ("- name: SRE Core", '- name: "SRE\\u0000Core"', "teams[0].name"),
        (
            "email: sre@example.com",
            'email: "sre@example.com\\r\\nBcc: x@evil.example"',
            "teams[0].email",
        ),
    ],
)
def test_config_names_with_control_characters_are_refused(old, new, key, fake_slack):
    from tests.fakes.receivers import HttpRecorder
    from tests.fakes.smtp import SmtpInbox
    from tests.scenario.test_all_providers import config_text

    rec, smtp = HttpRecorder(), SmtpInbox()
    text = config_text(rec, smtp, fake_slack.url)
    assert old in text
    with pytest.raises(ConfigError) as err:
        config_file.parse(text.replace(old, new, 1), {}, name="imas.yml", allow_private=True)
    message = str(err.value)
    assert "imas.yml:" in message and key in message and "control" in message


@pytest.fixture
def api(make_settings):
    yield from api_fixture(make_settings)


def test_alert_text_is_normalised_not_refused(api):
    alert = {
        "receiver": "imas",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "Redis\r\nDown\x1b[31m",
                    "service": "redis-prod",
                    "severity": "critical",
                },
                "annotations": {"summary": "Redis\r\nBcc: x@evil.example\x07 down\x85"},
                "startsAt": "2026-01-01T00:00:00Z",
                "fingerprint": "ctrl-1",
            }
        ],
    }
    response = api.webhook("alertmanager", alert)
    assert response.status_code in (200, 201, 202), response.text
    assert response.json()["created_incidents"], response.text
    with api.rt.transaction() as session:
        incidents = session.query(Incident).all()
        assert len(incidents) == 1
        assert incidents[0].title == "Redis Bcc: x@evil.example down"
        assert control_character(incidents[0].description, multiline=True) is None


def test_cr_lf_title_stored_earlier_still_delivers_email(make_settings, fake_slack, receivers):
    rec, smtp = receivers
    rt = build(make_settings, rec, smtp, fake_slack)
    short_id = declare_sev1(rt)
    with rt.transaction() as session:  # as written before titles were checked
        session.execute(
            update(Incident)
            .where(Incident.short_id == short_id)
            .values(title="Redis\r\nBcc: intruder@evil.example\r\n\x1b down")
        )
    make_worker(rt).drain()
    mails = [
        d for d in deliveries(rt, short_id) if d["kind"] == "notify" and d["provider"] == "Mail"
    ]
    assert mails and {d["state"] for d in mails} == {"done"}, mails
    assert sorted(m["To"] for m in smtp.messages) == ["ciso@example.com", "sre@example.com"]
    for message in smtp.messages:
        assert "intruder@evil.example" in message["Subject"]  # the stored title, made safe
        assert "\r" not in message["Subject"] and "\n" not in message["Subject"]
        assert message["Bcc"] is None
