"""REST on-call: who is on call, overrides (responder+, audited), the calendar feed
(parsed with icalendar, matching the engine for the next 30 days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar

from bot import config_file
from bot.flows import oncall as oncall_flow
from bot.oncall import shifts
from storage import catalog
from storage.models import AuditEntry, ScheduleOverride

CONFIG = """teams:
  - name: SRE Core
    slack_channel_id: C0123456789
    current_on_call: oncall@example.com
schedules:
  - name: sre-primary
    team: SRE Core
    timezone: Europe/Paris
    layers:
      - name: weekly
        members: [alice@example.com, bob@example.com]
        rotation: weekly
        start: 2026-01-05
      - name: business
        members: [carol@example.com, U0DAVE001]
        rotation: daily
        start: 2026-01-05
        restrictions:
          - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00"}
"""
NOW = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)  # Monday 18:30 Paris, alice's week


@pytest.fixture
def oncall_api(api):
    api.rt.clock = lambda: NOW
    with api.rt.transaction() as session:
        config_file.apply(session, api.rt, config_file.parse(CONFIG, {}))
    return api


def test_who_is_on_call(oncall_api):
    api = oncall_api
    response = api.client.get("/api/v1/oncall/", headers=api.auth("viewer"))
    assert response.status_code == 200, response.text
    [answer] = response.json()["results"]
    assert (answer["team"], answer["ref"], answer["schedule"]) == (
        "SRE Core",
        "alice@example.com",
        "sre-primary",
    )
    assert answer["until"] == "2026-03-03T08:00:00+00:00"  # 09:00 Paris: business hours
    at = "2026-03-02T10:00:00+01:00"
    response = api.client.get(
        "/api/v1/oncall/", params={"team": "sre core", "at": at}, headers=api.auth("viewer")
    )
    assert response.json()["results"][0]["ref"] == "carol@example.com"


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"team": "nope"}, 404, "No team named 'nope'"),
        ({"at": "yesterday"}, 400, "at:"),
    ],
)
def test_who_is_on_call_errors(oncall_api, params, status, detail):
    response = oncall_api.client.get(
        "/api/v1/oncall/", params=params, headers=oncall_api.auth("viewer")
    )
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_who_is_on_call_needs_a_token(oncall_api):
    assert oncall_api.client.get("/api/v1/oncall/").status_code == 401


def _overrides(api) -> int:
    with api.rt.transaction() as session:
        return session.query(ScheduleOverride).count()


def test_override_responder_and_audited(oncall_api):
    api = oncall_api
    body = {"team": "SRE Core", "person": "erin@example.com", "duration": "2h"}
    refused = api.client.post("/api/v1/oncall/overrides/", json=body, headers=api.auth("viewer"))
    assert refused.status_code == 403 and _overrides(api) == 0
    response = api.client.post(
        "/api/v1/oncall/overrides/", json=body, headers=api.auth("responder")
    )
    assert response.status_code == 201, response.text
    assert response.json()["ends_at"] == "2026-03-02T19:30:00+00:00"
    [answer] = api.client.get("/api/v1/oncall/", headers=api.auth("viewer")).json()["results"]
    assert answer["ref"] == "erin@example.com"
    with api.rt.transaction() as session:
        [entry] = session.query(AuditEntry).filter_by(action="oncall.override", outcome="ok")
        assert (entry.door, entry.target) == ("api", "sre-primary")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"team": "SRE Core", "person": "erin", "duration": "2h"}, "Slack user"),
        ({"team": "SRE Core", "person": "e@example.com", "duration": "soon"}, "not a duration"),
        ({"team": "SRE Core", "person": "e@example.com"}, "end time or a duration"),
        ({"person": "e@example.com", "duration": "2h"}, "team"),
        (
            {
                "team": "SRE Core",
                "person": "e@example.com",
                "starts_at": "2026-03-02T10:00:00Z",
                "ends_at": "2026-03-02T09:00:00Z",
            },
            "end after it starts",
        ),
    ],
)
def test_bad_override_is_400_and_writes_nothing(oncall_api, body, detail):
    api = oncall_api
    response = api.client.post(
        "/api/v1/oncall/overrides/", json=body, headers=api.auth("responder")
    )
    assert response.status_code == 400, response.text
    assert detail in response.text
    assert _overrides(api) == 0


def test_calendar_feed_matches_the_engine_for_30_days(oncall_api):
    api = oncall_api
    api.client.post(
        "/api/v1/oncall/overrides/",
        json={"team": "SRE Core", "person": "erin@example.com", "duration": "1d"},
        headers=api.auth("responder"),
    )
    response = api.client.get(
        "/api/v1/oncall/sre-primary/calendar.ics", params={"token": api.tokens["viewer"]}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    end = NOW + timedelta(days=30)
    events = [
        (
            component.decoded("dtstart"),
            min(component.decoded("dtend"), end),
            str(component.get("summary")),
        )
        for component in calendar.walk("VEVENT")
        if component.decoded("dtstart") < end
    ]
    with api.rt.transaction() as session:
        team = catalog.get_team(session, name="SRE Core")
        row = oncall_flow.schedule_of(session, team)
        expected = [
            (s.start, s.end, f"On call: {s.person}")
            for s in shifts(oncall_flow.compiled(session, row, team=team), NOW, end)
        ]
    assert events == expected
    assert len(events) > 30  # business days split the weekly shifts
    assert events[0][2] == "On call: erin@example.com"


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/oncall/sre-primary/calendar.ics", {}, 401),
        ("/api/v1/oncall/sre-primary/calendar.ics", {"token": "wrong"}, 401),
        ("/api/v1/oncall/nope/calendar.ics", {"token": "viewer"}, 404),
        ("/api/v1/oncall/SRE Core/calendar.ics", {"token": "viewer"}, 200),
    ],
)
def test_calendar_feed_access(oncall_api, path, params, status):
    if params.get("token") == "viewer":
        params = {"token": oncall_api.tokens["viewer"]}
    response = oncall_api.client.get(path, params=params)
    assert response.status_code == status
    assert oncall_api.tokens["viewer"] not in response.text


def test_person_calendar_feed(oncall_api):
    api = oncall_api
    response = api.client.get(
        "/api/v1/oncall/people/alice@example.com/calendar.ics",
        params={"token": api.tokens["viewer"]},
    )
    assert response.status_code == 200, response.text
    events = list(Calendar.from_ical(response.content).walk("VEVENT"))
    assert events and {str(e.get("summary")) for e in events} == {"On call: SRE Core"}
    end = NOW + timedelta(days=90)
    with api.rt.transaction() as session:
        team = catalog.get_team(session, name="SRE Core")
        row = oncall_flow.schedule_of(session, team)
        expected = [
            (s.start, s.end)
            for s in shifts(oncall_flow.compiled(session, row, team=team), NOW, end)
            if s.person == "alice@example.com"
        ]
    assert [(e.decoded("dtstart"), e.decoded("dtend")) for e in events] == expected
    unknown = api.client.get(
        "/api/v1/oncall/people/nobody@example.com/calendar.ics",
        params={"token": api.tokens["viewer"]},
    )
    assert unknown.status_code == 404
