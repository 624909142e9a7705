"""Who-is-on-call lookup time: 500 schedules, each with a year of hand-offs behind it.

Every schedule has three layers (a weekly 24/7 rotation of 6 people, a daily
business-hours layer Monday-Friday 09:00-18:00 of 4 people, a 12-hour custom rotation)
in one of four time zones, started a year before the lookups, plus 20 overrides spread
over that year. Two measures:

* engine: ``bot.oncall.who_is_on_call`` on compiled schedules, at random instants of the
  year (what a router call costs once the schedule is in memory);
* database: ``bot.flows.oncall.current_for_team`` (reads the team's schedule row and its
  overrides, compiles, answers) on SQLite or PostgreSQL, at random instants.

Prints p50 / p99 / max per lookup.

    .venv/bin/python bench/bench_oncall.py [--schedules 500] [--lookups 20000]
        [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)


def spec(index: int) -> dict[str, object]:
    people = [f"p{index}-{n}@example.com" for n in range(8)]
    return {
        "timezone": ZONES[index % len(ZONES)],
        "layers": [
            {"name": "weekly", "members": people[:6], "rotation": "weekly", "start": "2025-12-29"},
            {
                "name": "business",
                "members": people[4:8],
                "rotation": "daily",
                "start": "2025-12-29",
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
                ],
            },
            {
                "name": "twelve",
                "members": people[:3],
                "rotation": "custom",
                "hours": 12,
                "handoff": "08:00",
                "start": "2025-12-29",
                "restrictions": [{"days": ["sat", "sun"], "start": "00:00", "end": "00:00"}],
            },
        ],
    }


def overrides(rng: random.Random, index: int) -> list[tuple[str, datetime, datetime]]:
    out = []
    for n in range(20):
        start = YEAR_START + timedelta(minutes=rng.randrange(365 * 24 * 60))
        out.append(
            (f"cover{index}-{n}@example.com", start, start + timedelta(hours=rng.randrange(1, 48)))
        )
    return out


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    return f"p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, max {samples[-1] * 1000:.3f} ms"


def bench_engine(count: int, lookups: int, rng: random.Random) -> None:
    from bot.oncall import Override, compile_schedule, who_is_on_call

    schedules = [
        compile_schedule(f"s{i}", spec(i), [Override(*o) for o in overrides(rng, i)])
        for i in range(count)
    ]
    samples = []
    for _ in range(lookups):
        schedule = schedules[rng.randrange(count)]
        at = YEAR_START + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        t0 = time.perf_counter()
        who_is_on_call(schedule, at)
        samples.append(time.perf_counter() - t0)
    print(f"engine   ({count} schedules, {lookups} lookups): {percentiles(samples)}")


def bench_database(count: int, lookups: int, rng: random.Random, url: str | None) -> None:
    from bot import config_file
    from bot.flows.oncall import current_for_team
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from storage import catalog
    from storage.models import Schedule, ScheduleOverride, Team

    folder = Path(tempfile.mkdtemp(prefix="bench-oncall-"))
    database_url = url or f"sqlite:///{folder / 'imas.db'}"
    rt = Runtime.build(load_settings(database_url=database_url, secret_key="bench"))
    with rt.transaction() as session:
        document = config_file.parse("teams: []\n", {})
        config_file.apply(session, rt, document)
        for i in range(count):
            team = Team(name=f"team-{i}", escalation_levels=[])
            session.add(team)
            session.flush()
            row = Schedule(name=f"s{i}", team_id=team.id, spec=spec(i))
            for n in range(8):  # as config apply does for layer members
                catalog.ensure_person(session, ref=f"p{i}-{n}@example.com")
            session.add(row)
            session.flush()
            for ref, start, end in overrides(rng, i):
                person = catalog.ensure_person(session, ref=ref)
                session.add(
                    ScheduleOverride(
                        schedule_id=row.id,
                        person_id=person.id,
                        starts_at=start,
                        ends_at=end,
                        created_by="bench",
                    )
                )
    with rt.reading() as session:
        teams = catalog.list_teams(session)
        samples = []
        for _ in range(lookups):
            team = teams[rng.randrange(len(teams))]
            at = YEAR_START + timedelta(seconds=rng.randrange(365 * 24 * 3600))
            t0 = time.perf_counter()
            current_for_team(session, team, at)
            samples.append(time.perf_counter() - t0)
    kind = database_url.split(":", 1)[0].split("+")[0]
    print(f"database ({kind}, {count} schedules, {lookups} lookups): {percentiles(samples)}")
    rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=500)
    parser.add_argument("--lookups", type=int, default=20000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    rng = random.Random(13)
    bench_engine(args.schedules, args.lookups, rng)
    bench_database(args.schedules, max(1, args.lookups // 10), rng, args.database_url)


if __name__ == "__main__":
    main()
