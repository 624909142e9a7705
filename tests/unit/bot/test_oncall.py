"""The schedule engine (bot.oncall): rotations across DST, layers, restrictions,
overrides, gaps. Pure functions: the "clock" is the instant each test passes in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.oncall import (
    Override,
    ScheduleSpec,
    compile_schedule,
    gaps,
    shifts,
    who_is_on_call,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def daily(zone: str, members: list[str], start: str, handoff: str = "09:00", **extra):
    return compile_schedule(
        "s",
        {
            "timezone": zone,
            "layers": [
                {"members": members, "rotation": "daily", "handoff": handoff, "start": start}
            ],
        },
        **extra,
    )


# -- rotations across DST --------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "start", "change"),
    [
        # Spring forward: Paris 2026-03-29, New York 2026-03-08; fall back: Paris
        # 2026-10-25, New York 2026-11-01.
        ("Europe/Paris", "2026-03-27", datetime(2026, 3, 29)),
        ("Europe/Paris", "2026-10-23", datetime(2026, 10, 25)),
        ("America/New_York", "2026-03-06", datetime(2026, 3, 8)),
        ("America/New_York", "2026-10-30", datetime(2026, 11, 1)),
    ],
)
def test_daily_handoff_stays_at_wall_clock_time_across_dst(zone, start, change):
    tz = ZoneInfo(zone)
    schedule = daily(zone, ["a", "b", "c"], start)
    found = shifts(
        schedule,
        datetime.fromisoformat(start).replace(tzinfo=tz),
        change.replace(tzinfo=tz) + timedelta(days=3),
    )
    assert [s.person for s in found] == ["a", "b", "c", "a", "b"]
    # Every hand-off is at 09:00 local, whatever the offset that day.
    assert {s.start.astimezone(tz).strftime("%H:%M") for s in found} == {"09:00"}
    durations = [s.end - s.start for s in found[:-1]]
    # The shift that crosses the change is 23 or 25 hours long; the others 24.
    assert sorted(durations)[0] in (timedelta(hours=23), timedelta(hours=24))
    assert set(durations) - {timedelta(hours=24)} <= {
        timedelta(hours=23),
        timedelta(hours=25),
    }
    assert len(set(durations) - {timedelta(hours=24)}) == 1


def test_weekly_rotation_in_new_york_across_spring_forward():
    schedule = compile_schedule(
        "s",
        {
            "timezone": "America/New_York",
            "layers": [{"members": ["a", "b"], "rotation": "weekly", "start": "2026-03-02"}],
        },
    )
    # Monday 2026-03-09 09:00 EDT (13:00 UTC) is b's hand-off, a week after a's at 14:00 UTC.
    assert who_is_on_call(schedule, datetime(2026, 3, 9, 12, 59, tzinfo=UTC)) == "a"
    assert who_is_on_call(schedule, datetime(2026, 3, 9, 13, 0, tzinfo=UTC)) == "b"
    assert who_is_on_call(schedule, datetime(2026, 3, 16, 13, 0, tzinfo=UTC)) == "a"


def test_handoff_inside_the_skipped_hour_happens_after_the_change():
    # 02:30 does not exist in Paris on 2026-03-29: the hand-off is at 03:30 CEST.
    schedule = daily("Europe/Paris", ["a", "b"], "2026-03-28", handoff="02:30")
    assert who_is_on_call(schedule, datetime(2026, 3, 29, 3, 29, tzinfo=PARIS)) == "a"
    assert who_is_on_call(schedule, datetime(2026, 3, 29, 3, 30, tzinfo=PARIS)) == "b"


def test_custom_rotation_counts_elapsed_hours_across_dst():
    schedule = compile_schedule(
        "s",
        {
            "timezone": "Europe/Paris",
            "layers": [
                {
                    "members": ["day", "night"],
                    "rotation": "custom",
                    "hours": 12,
                    "handoff": "08:00",
                    "start": "2026-03-28",
                }
            ],
        },
    )
    found = shifts(
        schedule, datetime(2026, 3, 28, 7, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    )
    assert all(s.end - s.start == timedelta(hours=12) for s in found[1:-1])
    # 08:00 CET was 07:00 UTC; after the change hand-offs are at 09:00 / 21:00 CEST.
    assert found[-2].start.astimezone(PARIS).hour in (9, 21)


# -- layers and restrictions -----------------------------------------------------------


BUSINESS = {
    "timezone": "Europe/Paris",
    "layers": [
        {"name": "base", "members": ["a", "b"], "rotation": "weekly", "start": "2026-01-05"},
        {
            "name": "business",
            "members": ["x", "y"],
            "rotation": "daily",
            "start": "2026-01-05",
            "restrictions": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
            ],
        },
    ],
}


def test_higher_layer_wins_inside_its_restriction_only():
    schedule = compile_schedule("s", BUSINESS)
    monday = datetime(2026, 3, 30, tzinfo=PARIS)  # after the spring change
    assert who_is_on_call(schedule, monday.replace(hour=8, minute=59)) in ("a", "b")
    assert who_is_on_call(schedule, monday.replace(hour=9)) in ("x", "y")
    assert who_is_on_call(schedule, monday.replace(hour=17, minute=59)) in ("x", "y")
    assert who_is_on_call(schedule, monday.replace(hour=18)) in ("a", "b")
    saturday = datetime(2026, 4, 4, 12, tzinfo=PARIS)
    assert who_is_on_call(schedule, saturday) in ("a", "b")
    week = shifts(schedule, monday, monday + timedelta(days=7))
    business = [s for s in week if s.layer == "business"]
    assert len(business) == 5
    assert {(s.start.astimezone(PARIS).hour, s.end.astimezone(PARIS).hour) for s in business} == {
        (9, 18)
    }


def test_restriction_past_midnight_and_gaps_reported():
    schedule = compile_schedule(
        "s",
        {
            "timezone": "America/New_York",
            "layers": [
                {
                    "members": ["night"],
                    "rotation": "weekly",
                    "start": "2026-01-05",
                    "restrictions": [{"days": ["fri"], "start": "22:00", "end": "06:00"}],
                }
            ],
        },
    )
    friday = datetime(2026, 3, 6, tzinfo=NEW_YORK)
    assert who_is_on_call(schedule, friday.replace(hour=23)) == "night"
    assert who_is_on_call(schedule, friday.replace(day=7, hour=5)) == "night"
    assert who_is_on_call(schedule, friday.replace(day=7, hour=6)) is None
    holes = gaps(schedule, friday, friday + timedelta(days=7))
    assert [(lo.astimezone(NEW_YORK), hi.astimezone(NEW_YORK)) for lo, hi in holes] == [
        (friday, friday.replace(hour=22)),
        (friday.replace(day=7, hour=6), friday + timedelta(days=7)),
    ]


def test_empty_schedule_is_one_gap_and_fallback_fills_it():
    empty = compile_schedule("s", {})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert gaps(empty, start, start + timedelta(days=7)) == [(start, start + timedelta(days=7))]
    assert who_is_on_call(empty, start) is None
    with_fallback = compile_schedule("s", BUSINESS, fallback="boss")
    assert who_is_on_call(with_fallback, datetime(2025, 1, 1, tzinfo=UTC)) == "boss"
    assert gaps(with_fallback, start - timedelta(days=365), start) == []


# -- overrides -------------------------------------------------------------------------


def test_override_inside_a_shift_and_across_a_handoff():
    base = daily("Europe/Paris", ["a", "b"], "2026-03-01")
    day = datetime(2026, 3, 10, tzinfo=PARIS)
    inside = Override("z", day.replace(hour=12), day.replace(hour=14))
    across = Override("w", day.replace(day=11, hour=8), day.replace(day=11, hour=10))
    schedule = compile_schedule(
        "s", {"timezone": "Europe/Paris", "layers": [_layer_of(base)]}, [inside, across]
    )
    found = shifts(schedule, day.replace(hour=9), day.replace(day=12, hour=9))
    people = [(s.person, s.start.astimezone(PARIS).strftime("%d %H"), s.layer) for s in found]
    assert people == [
        ("b", "10 09", "layer"),
        ("z", "10 12", "override"),
        ("b", "10 14", "layer"),
        ("w", "11 08", "override"),
        ("a", "11 10", "layer"),
    ]
    assert who_is_on_call(schedule, day.replace(day=11, hour=9)) == "w"
    assert who_is_on_call(schedule, day.replace(day=11, hour=10)) == "a"


def test_later_override_wins_and_override_fills_gap():
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    schedule = compile_schedule(
        "s",
        {},
        [
            Override("first", at, at + timedelta(hours=4)),
            Override("second", at, at + timedelta(hours=1)),
        ],
    )
    assert who_is_on_call(schedule, at) == "second"
    assert who_is_on_call(schedule, at + timedelta(hours=2)) == "first"
    assert gaps(schedule, at, at + timedelta(hours=5)) == [
        (at + timedelta(hours=4), at + timedelta(hours=5))
    ]


def test_naive_datetimes_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        who_is_on_call(compile_schedule("s", {}), datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"members": []}, "at least 1"),
        ({"members": ["a"], "rotation": "custom"}, "needs hours"),
        ({"members": ["a"], "handoff": "25:00"}, "time of day"),
        ({"members": ["a"], "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"members": ["a"], "restrictions": [{"days": ["funday"]}]}, "unknown days"),
    ],
)
def test_spec_errors_are_clear(layer, message):
    with pytest.raises(ValidationError, match=message):
        ScheduleSpec.model_validate({"layers": [layer]})


def _layer_of(schedule):
    layer = schedule.layers[0]
    return {
        "members": list(layer.members),
        "rotation": "daily",
        "handoff": layer.first_handoff.strftime("%H:%M"),
        "start": layer.first_handoff.date().isoformat(),
    }


# -- properties ------------------------------------------------------------------------

ZONES = st.sampled_from(["Europe/Paris", "America/New_York", "UTC", "Australia/Lord_Howe"])
HHMM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30]))
RESTRICTION = st.fixed_dictionaries(
    {
        "days": st.lists(
            st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
            min_size=1,
            unique=True,
        ),
        "start": HHMM,
        "end": HHMM,
    }
)
LAYER = st.fixed_dictionaries(
    {
        "members": st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4),
        "rotation": st.sampled_from(["daily", "weekly"]),
        "handoff": HHMM,
        "start": st.dates(
            min_value=datetime(2025, 10, 1).date(), max_value=datetime(2026, 4, 1).date()
        ).map(str),
        "restrictions": st.lists(RESTRICTION, max_size=2),
    }
)
CUSTOM = st.fixed_dictionaries(
    {
        "members": st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
        "rotation": st.just("custom"),
        "hours": st.integers(1, 72),
        "handoff": HHMM,
        "start": st.just("2026-01-01"),
    }
)
SPEC = st.fixed_dictionaries({"timezone": ZONES, "layers": st.lists(LAYER | CUSTOM, max_size=3)})
INSTANT = st.datetimes(
    min_value=datetime(2025, 9, 1), max_value=datetime(2026, 12, 1), timezones=st.just(UTC)
)
OVERRIDES = st.lists(
    st.builds(
        lambda who, at, hours: Override(who, at, at + timedelta(hours=hours)),
        st.sampled_from(["o1", "o2"]),
        INSTANT,
        st.integers(1, 100),
    ),
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(
    spec=SPEC,
    overrides=OVERRIDES,
    start=INSTANT,
    hours=st.integers(1, 24 * 20),
    probes=st.lists(st.floats(0, 1), min_size=1, max_size=8),
)
def test_shifts_gaps_and_lookup_agree(spec, overrides, start, hours, probes):
    schedule = compile_schedule("s", spec, overrides)
    end = start + timedelta(hours=hours)
    found = shifts(schedule, start, end)
    holes = gaps(schedule, start, end)
    # Shifts and gaps tile [start, end) exactly, in order, without overlap.
    spans = sorted([(s.start, s.end) for s in found] + holes)
    assert spans[0][0] == start and spans[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(s.start < s.end for s in found)
    # At the start of every shift, at random instants, the lookup names the same person.
    for shift in found:
        assert who_is_on_call(schedule, shift.start) == shift.person
    for fraction in probes:
        at = start + (end - start) * fraction
        if at >= end:
            continue
        covering = [s for s in found if s.start <= at < s.end]
        expected = covering[0].person if covering else None
        assert who_is_on_call(schedule, at) == expected


@settings(max_examples=100, deadline=None)
@given(spec=SPEC, at=INSTANT, who=st.sampled_from(["o1", "o2"]), hours=st.integers(1, 48))
def test_an_override_always_wins_inside_and_never_outside(spec, at, who, hours):
    plain = compile_schedule("s", spec)
    override = Override(who, at, at + timedelta(hours=hours))
    schedule = compile_schedule("s", spec, [override])
    assert who_is_on_call(schedule, at) == who
    assert who_is_on_call(schedule, override.end - timedelta(microseconds=1)) == who
    assert who_is_on_call(schedule, override.end) == who_is_on_call(plain, override.end)
    before = at - timedelta(microseconds=1)
    assert who_is_on_call(schedule, before) == who_is_on_call(plain, before)


@settings(max_examples=100, deadline=None)
@given(zone=ZONES, members=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6), at=INSTANT)
def test_a_daily_rotation_hands_off_every_local_day(zone, members, at):
    schedule = daily(zone, members, "2025-06-02", handoff="09:00")
    tz = ZoneInfo(zone)
    local = at.astimezone(tz)
    days = (local.date() - datetime(2025, 6, 2).date()).days - (1 if local.hour < 9 else 0)
    assert who_is_on_call(schedule, at) == members[days % len(members)]
