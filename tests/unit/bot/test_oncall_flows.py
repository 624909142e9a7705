"""On-call schedules stored from the config file, looked up by the router and paging,
overridden through the flow (audited), gaps reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import config_file
from bot.domain.actor import Actor
from bot.domain.enums import AccessRole
from bot.domain.errors import ConfigError, InputError, NotFoundError, PermissionDeniedError
from bot.flows import oncall
from bot.runtime import Runtime
from storage import catalog
from storage.models import AuditEntry, Schedule, ScheduleOverride

CONFIG = """teams:
  - name: SRE Core
    current_on_call: oncall@example.com
    schedule: sre-primary
  - name: Payments
    current_on_call: pay@example.com
  - name: Nobody Team
schedules:
  - name: sre-primary
    timezone: Europe/Paris
    layers:
      - name: weekly
        members: [alice@example.com, U0BOB0001]
        rotation: weekly
        handoff: "09:00"
        start: 2026-01-05
        restrictions:
          - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00"}
  - name: secondary
    layers:
      - {members: [carol@example.com], rotation: daily}
"""
# Monday 2026-03-02 10:00 Paris: alice's week (weeks 0, 2, 4, 6, 8 since 2026-01-05).
MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLI = Actor(label="cli", source="cli", ref="cli")


@pytest.fixture
def rt(make_settings):
    rt = Runtime.build(make_settings())
    rt.clock = lambda: MONDAY_10
    with rt.transaction() as session:
        config_file.apply(session, rt, config_file.parse(CONFIG, {}))
    yield rt
    rt.close()


def test_config_errors_name_file_line_and_key():
    bad = CONFIG.replace("schedule: sre-primary", "schedule: nope").replace(
        "rotation: daily", "rotation: monthly"
    )
    with pytest.raises(ConfigError) as err:
        config_file.parse(bad, {}, name="imas.yml")
    text = str(err.value)
    assert "imas.yml:21: schedules[1].layers[0].rotation" in text
    bad = CONFIG.replace("schedule: sre-primary", "schedule: nope")
    with pytest.raises(ConfigError) as err:
        config_file.parse(bad, {}, name="imas.yml")
    assert "imas.yml:4: teams[0].schedule: unknown schedule 'nope'" in str(err.value)
    bad = CONFIG.replace('handoff: "09:00"', 'handoff: "9h"')
    with pytest.raises(ConfigError) as err:
        config_file.parse(bad, {}, name="imas.yml")
    assert "imas.yml:15: schedules[0].layers[0].handoff" in str(err.value)
    bad = CONFIG + "    team: Nobody Team\n  - name: third\n    team: Nobody Team\n"
    with pytest.raises(ConfigError) as err:
        config_file.parse(bad, {}, name="imas.yml")
    assert "schedules[2].team: team 'Nobody Team' already has schedule 'secondary'" in str(
        err.value
    )


def test_apply_is_idempotent_and_exports(rt):
    document = config_file.parse(CONFIG, {})
    with rt.transaction() as session:
        again = config_file.apply(session, rt, document)
        assert not again.changed
        row = session.query(Schedule).filter_by(name="sre-primary").one()
        assert row.team.name == "SRE Core"
        assert row.spec["timezone"] == "Europe/Paris"
        exported = config_file.export(session, rt)
    reparsed = config_file.parse(exported, {})
    assert [s.name for s in reparsed.schedules] == ["sre-primary", "secondary"]
    assert reparsed.schedules[0].team == "SRE Core"


def test_current_for_team_uses_the_schedule_over_current_on_call(rt):
    with rt.transaction() as session:
        team = catalog.get_team(session, name="SRE Core")
        assert oncall.current_for_team(session, team, MONDAY_10).email == "alice@example.com"
        next_week = MONDAY_10 + timedelta(days=7)
        assert oncall.current_for_team(session, team, next_week).slack_user_id == "U0BOB0001"
        # Outside business hours the restricted layer is transparent: current_on_call.
        evening = MONDAY_10 + timedelta(hours=10)
        assert oncall.current_for_team(session, team, evening).email == "oncall@example.com"
        payments = catalog.get_team(session, name="Payments")
        assert oncall.current_for_team(session, payments, MONDAY_10).email == "pay@example.com"
        nobody = catalog.get_team(session, name="Nobody Team")
        assert oncall.current_for_team(session, nobody, MONDAY_10) is None


def test_on_call_read_flow(rt):
    answers = {a.team: a for a in oncall.on_call(rt, actor=CLI)}
    assert answers["SRE Core"].person == "alice@example.com"
    assert answers["SRE Core"].schedule == "sre-primary"
    assert answers["SRE Core"].until == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert answers["Nobody Team"].person is None
    [one] = oncall.on_call(rt, actor=CLI, team="payments", at=MONDAY_10)
    assert (one.team, one.person, one.until) == ("Payments", "pay@example.com", None)
    with pytest.raises(NotFoundError):
        oncall.on_call(rt, actor=CLI, team="nope")
    with pytest.raises(InputError):
        oncall.on_call(rt, actor=CLI, at=datetime(2026, 3, 2))


def test_override_is_one_audited_transaction(rt):
    actor = Actor(label="alice", source="api", ref="token:1", role=AccessRole.RESPONDER)
    result = oncall.create_override(
        rt, actor=actor, target="SRE Core", person="dave@example.com", duration=timedelta(hours=2)
    )
    assert (result["schedule"], result["ref"]) == ("sre-primary", "dave@example.com")
    with rt.transaction() as session:
        team = catalog.get_team(session, name="SRE Core")
        assert oncall.current_for_team(session, team, MONDAY_10).email == "dave@example.com"
        after = MONDAY_10 + timedelta(hours=2)
        assert oncall.current_for_team(session, team, after).email == "alice@example.com"
        [entry] = session.query(AuditEntry).filter_by(action="oncall.override").all()
        assert (entry.target, entry.actor_ref, entry.outcome) == ("sre-primary", "token:1", "ok")
        assert entry.changes["person"] == "dave@example.com"


def test_override_of_a_team_without_schedule_creates_it(rt):
    oncall.create_override(
        rt,
        actor=CLI,
        target="Payments",
        person="U0DAVE001",
        start=MONDAY_10 + timedelta(hours=1),
        end=MONDAY_10 + timedelta(hours=3),
    )
    with rt.transaction() as session:
        team = catalog.get_team(session, name="Payments")
        row = oncall.schedule_of(session, team)
        assert row.name == "Payments" and row.spec == {}
        assert oncall.current_for_team(session, team, MONDAY_10).email == "pay@example.com"
        inside = MONDAY_10 + timedelta(hours=2)
        assert oncall.current_for_team(session, team, inside).slack_user_id == "U0DAVE001"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"person": "dave", "duration": timedelta(hours=1)}, InputError, "Slack user"),
        ({"person": "d@example.com"}, InputError, "either an end time or a duration"),
        (
            {"person": "d@example.com", "duration": timedelta(days=91)},
            InputError,
            "at most 90 days",
        ),
        (
            {"person": "d@example.com", "end": MONDAY_10 - timedelta(hours=1)},
            InputError,
            "end after it starts",
        ),
        (
            {
                "person": "d@example.com",
                "start": MONDAY_10 - timedelta(hours=3),
                "end": MONDAY_10 - timedelta(hours=1),
            },
            InputError,
            "over already",
        ),
        (
            {"person": "d@example.com", "duration": timedelta(hours=1), "target": "nope"},
            NotFoundError,
            "No team or schedule",
        ),
    ],
)
def test_bad_overrides_write_nothing(rt, kwargs, error, message):
    kwargs = {"target": "SRE Core", **kwargs}
    with pytest.raises(error, match=message):
        oncall.create_override(rt, actor=CLI, **kwargs)
    with rt.transaction() as session:
        assert session.query(ScheduleOverride).count() == 0
        assert session.query(AuditEntry).filter_by(action="oncall.override").count() == 0


def test_viewer_cannot_override_and_the_denial_is_audited(rt):
    viewer = Actor(label="v", source="api", ref="token:9", role=AccessRole.VIEWER)
    with pytest.raises(
        PermissionDeniedError, match="Overriding on-call schedules needs the responder role"
    ):
        oncall.create_override(
            rt, actor=viewer, target="SRE Core", person="U0X000001", duration=timedelta(hours=1)
        )
    with rt.transaction() as session:
        assert session.query(ScheduleOverride).count() == 0
        [entry] = session.query(AuditEntry).filter_by(action="oncall.override").all()
        assert entry.outcome == "denied"


def test_gap_report(rt):
    with rt.transaction() as session:
        report = dict(oncall.gap_report(session, MONDAY_10, MONDAY_10 + timedelta(days=7)))
    # SRE Core's business-hours layer sits over current_on_call; the team-less
    # secondary schedule is one daily layer: only the team with nobody has a gap.
    assert set(report) == {"team Nobody Team"}
    assert report["team Nobody Team"] == [(MONDAY_10, MONDAY_10 + timedelta(days=7))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2h", timedelta(hours=2)), ("30m", timedelta(minutes=30)), ("1d2h", timedelta(hours=26))],
)
def test_parse_duration(text, expected):
    assert oncall.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-1h"])
def test_parse_duration_refuses(text):
    with pytest.raises(InputError):
        oncall.parse_duration(text)


def test_doctor_check_names_the_gap(rt):
    from bot.doctor import oncall_checks

    [check] = oncall_checks(rt)
    assert (check.name, check.ok, check.warning) == ("on-call team Nobody Team", True, True)
    assert "nobody on call for 168h00 in the next 7 days" in check.detail
    assert "first 2026-03-02 09:00–2026-03-09 09:00 UTC" in check.detail
