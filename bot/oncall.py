"""On-call schedules: who is on call at any instant (pure: no I/O, no clock).

A schedule is a stack of **layers**; each layer is a rotation of ``members`` (Slack user
ids or e-mail addresses, in order) with a rotation length (``daily``, ``weekly`` or
``custom`` = every ``hours`` hours), a hand-off time and a first hand-off date, in a time
zone. A layer may be **restricted** to windows (``days: [mon..fri], start: "09:00",
end: "18:00"``; a window whose end is not after its start runs past midnight): outside
them the layer is transparent. A **higher layer (later in the list) overrides the lower
ones** wherever it is active. **Overrides** (person X from A to B) beat every layer; of two
overlapping overrides the later one in the list wins. Where nothing applies there is a
**gap**: nobody is on call.

Time zones and DST: daily and weekly hand-offs happen at the hand-off *wall-clock* time of
the layer's zone (``zoneinfo``), so a 09:00 hand-off stays 09:00 across DST changes and a
"day" is 23 or 25 hours long on those dates. A wall-clock time that does not exist (the
spring-forward hour) is read with the offset before the change (02:30 in Paris on the last
Sunday of March is 03:30 CEST); an ambiguous one (the autumn hour) is its first occurrence.
Custom rotations count elapsed hours (a 12-hour rotation is 12 real hours, as pagers do).
Occurrences of hand-offs and restriction windows are generated with ``dateutil.rrule``.

The public API: :func:`who_is_on_call`, :func:`shifts`, :func:`gaps`, all taking and
returning timezone-aware datetimes (results in UTC). The schedule comes from its stored
spec (:class:`ScheduleSpec`, the ``schedules:`` entries of the config file) via
:func:`compile_schedule`. Database access (``current_for_team``, overrides) lives in
``bot.flows.oncall``.
"""

from __future__ import annotations

import heapq
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RRULE_DAYS = (rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU)
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _parse_hhmm(value: str) -> time:
    match = _HHMM.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a time of day HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name, e.g. Europe/Paris)"
        ) from None
    return value


# -- the spec (config file and database JSON) ------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestrictionSpec(_Spec):
    days: list[str] = Field(default_factory=lambda: list(DAY_NAMES), min_length=1)
    start: str = "00:00"
    end: str = "00:00"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [d.strip().lower()[:3] for d in value]
        bad = [d for d, raw in zip(days, value, strict=True) if d not in DAY_NAMES or not raw]
        if bad:
            raise ValueError(f"unknown days {bad}; use {', '.join(DAY_NAMES)}")
        return days

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        _parse_hhmm(value)
        return value


class LayerSpec(_Spec):
    name: str = Field("layer", min_length=1, max_length=200)
    members: list[str] = Field(min_length=1)
    rotation: Literal["daily", "weekly", "custom"] = "weekly"
    hours: int | None = Field(None, ge=1, le=24 * 366)
    handoff: str = "09:00"
    start: date = date(2024, 1, 1)
    timezone: str | None = None
    restrictions: list[RestrictionSpec] = Field(default_factory=list)

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        cleaned = [m.strip() for m in value]
        if any(not m for m in cleaned):
            raise ValueError("a member cannot be empty")
        return cleaned

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        _parse_hhmm(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @model_validator(mode="after")
    def _hours(self) -> LayerSpec:
        if self.rotation == "custom" and self.hours is None:
            raise ValueError("a custom rotation needs hours: N")
        if self.rotation != "custom" and self.hours is not None:
            raise ValueError("hours: applies to rotation: custom only")
        return self


class ScheduleSpec(_Spec):
    """What ``schedules:`` entries hold besides name and team (stored as ``Schedule.spec``)."""

    timezone: str = "UTC"
    layers: list[LayerSpec] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)


# -- the compiled schedule -------------------------------------------------------------


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("on-call times must be timezone-aware")
    return at.astimezone(UTC)


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time of ``zone`` as a UTC instant (fold=0; see the module docstring)."""
    return naive.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Restriction:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # not after start: the window runs into the next day

    def windows(
        self, zone: ZoneInfo, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """The UTC windows of this restriction that meet [start, end)."""
        # Local dates from the day before (a window past midnight) to the day after.
        first = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date() + timedelta(days=1)
        days = rrule.rrule(
            rrule.DAILY,
            dtstart=datetime.combine(first, time()),
            until=datetime.combine(last, time()),
            byweekday=[_RRULE_DAYS[d] for d in sorted(self.days)],
        )
        out = []
        for day in days:
            lo = _localize(datetime.combine(day.date(), self.start), zone)
            end_day = day.date() + timedelta(days=0 if self.end > self.start else 1)
            hi = _localize(datetime.combine(end_day, self.end), zone)
            if lo < end and hi > start and lo < hi:
                out.append((lo, hi))
        return out


@dataclass(frozen=True)
class Layer:
    name: str
    members: tuple[str, ...]
    zone: ZoneInfo
    first_handoff: datetime  # naive, wall clock of ``zone`` (UTC for custom rotations)
    period: timedelta
    freq: Literal[0, 1, 2, 3, 4, 5, 6]  # rrule frequency (WEEKLY, DAILY, HOURLY)
    interval: int
    elapsed: bool  # custom rotations count real hours (naive UTC), others wall-clock time
    restrictions: tuple[Restriction, ...] = ()

    def _naive(self, at: datetime) -> datetime:
        """An instant on this layer's hand-off clock (only used to estimate an index)."""
        if self.elapsed:
            return at.astimezone(UTC).replace(tzinfo=None)
        return at.astimezone(self.zone).replace(tzinfo=None)

    def handoff_at(self, index: int) -> datetime:
        """The UTC instant of hand-off number ``index`` (0 = the first)."""
        naive = self.first_handoff + index * self.period
        return naive.replace(tzinfo=UTC) if self.elapsed else _localize(naive, self.zone)

    def index_at(self, at: datetime) -> int | None:
        """The number of the shift running at ``at`` (None before the first hand-off)."""
        k = (self._naive(at) - self.first_handoff) // self.period
        # The wall-clock estimate may be one off around a DST change: settle on instants.
        while k >= 0 and self.handoff_at(k) > at:
            k -= 1
        while self.handoff_at(k + 1) <= at:
            k += 1
        return k if k >= 0 else None

    def member(self, index: int) -> str:
        return self.members[index % len(self.members)]

    def active(self, at: datetime) -> bool:
        if not self.restrictions:
            return True
        return any(
            lo <= at < hi
            for r in self.restrictions
            for lo, hi in r.windows(self.zone, at, at + timedelta(microseconds=1))
        )

    def at(self, at: datetime) -> str | None:
        if not self.active(at):
            return None
        index = self.index_at(at)
        return None if index is None else self.member(index)

    def handoffs(self, start: datetime, end: datetime) -> list[tuple[int, datetime]]:
        """(index, UTC instant) of the hand-offs in [start, end), generated by rrule."""
        lo = self.index_at(start)
        lo_naive = self.first_handoff + (lo if lo is not None else 0) * self.period
        hi_naive = self._naive(end) + self.period + timedelta(days=1)
        # Start the rule at a known occurrence: same occurrences, no scan from the first.
        rule = rrule.rrule(self.freq, dtstart=lo_naive, interval=self.interval)
        out = []
        for occurrence in rule.between(lo_naive, hi_naive, inc=True):
            index = (occurrence - self.first_handoff) // self.period
            instant = self.handoff_at(index)
            if instant >= end:
                break
            if instant >= start:
                out.append((index, instant))
        return out

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
        """(from, to, member) pieces of this layer inside [start, end), restrictions applied."""
        pieces: list[tuple[datetime, datetime, str]] = []
        current = self.index_at(start)
        cursor = start
        for index, instant in self.handoffs(start, end):
            if current is not None and instant > cursor:
                pieces.append((cursor, instant, self.member(current)))
            current, cursor = index, instant
        if current is not None and cursor < end:
            pieces.append((cursor, end, self.member(current)))
        if not self.restrictions:
            return pieces
        windows = _union([w for r in self.restrictions for w in r.windows(self.zone, start, end)])
        clipped = []
        for lo, hi, who in pieces:
            for wlo, whi in windows:
                a, b = max(lo, wlo), min(hi, whi)
                if a < b:
                    clipped.append((a, b, who))
        return clipped


def _union(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


@dataclass(frozen=True)
class Override:
    person: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _aware(self.start))
        object.__setattr__(self, "end", _aware(self.end))


@dataclass(frozen=True)
class Schedule:
    name: str
    layers: tuple[Layer, ...] = ()  # lowest first: later layers override earlier ones
    overrides: tuple[Override, ...] = ()

    @cached_property
    def _override_starts(self) -> list[datetime]:
        return sorted(o.start for o in self.overrides)


@dataclass(frozen=True)
class Shift:
    """Someone on call from ``start`` to ``end`` (UTC), by ``layer`` (or ``override``)."""

    person: str
    start: datetime
    end: datetime
    layer: str


def compile_layer(spec: LayerSpec, default_zone: str) -> Layer:
    zone = ZoneInfo(spec.timezone or default_zone)
    handoff = _parse_hhmm(spec.handoff)
    first = datetime.combine(spec.start, handoff)
    freq: Literal[0, 1, 2, 3, 4, 5, 6]
    if spec.rotation == "custom":
        assert spec.hours is not None
        # Elapsed hours: anchor the first hand-off as an instant, then count in UTC.
        first = _localize(first, zone).replace(tzinfo=None)
        period, freq, interval, elapsed = (
            timedelta(hours=spec.hours),
            rrule.HOURLY,
            spec.hours,
            True,
        )
    elif spec.rotation == "daily":
        period, freq, interval, elapsed = timedelta(days=1), rrule.DAILY, 1, False
    else:
        period, freq, interval, elapsed = timedelta(weeks=1), rrule.WEEKLY, 1, False
    restrictions = tuple(
        Restriction(
            days=frozenset(DAY_NAMES.index(d) for d in r.days),
            start=_parse_hhmm(r.start),
            end=_parse_hhmm(r.end),
        )
        for r in spec.restrictions
    )
    return Layer(
        name=spec.name,
        members=tuple(spec.members),
        zone=zone,
        first_handoff=first,
        period=period,
        freq=freq,
        interval=interval,
        elapsed=elapsed,
        restrictions=restrictions,
    )


def compile_schedule(
    name: str,
    spec: ScheduleSpec | dict[str, Any],
    overrides: list[Override] | tuple[Override, ...] = (),
    *,
    fallback: str | None = None,
) -> Schedule:
    """A :class:`Schedule` from its spec. ``fallback``: a person on call whenever no layer
    is (a team's ``current_on_call``: the one-person, always-on bottom layer)."""
    if isinstance(spec, ScheduleSpec):
        layers = [compile_layer(layer, spec.timezone) for layer in spec.layers]
    else:
        layers = list(_compiled_layers(json.dumps(spec, sort_keys=True, default=str)))
    if fallback:
        layers.insert(0, always(fallback))
    return Schedule(name=name, layers=tuple(layers), overrides=tuple(overrides))


@lru_cache(maxsize=2048)
def _compiled_layers(spec_json: str) -> tuple[Layer, ...]:
    """Layers of a stored spec, validated and compiled once (layers are immutable)."""
    spec = ScheduleSpec.model_validate(json.loads(spec_json))
    return tuple(compile_layer(layer, spec.timezone) for layer in spec.layers)


def always(person: str, name: str = "current_on_call") -> Layer:
    """A layer with one person on call at all times."""
    return Layer(
        name=name,
        members=(person,),
        zone=ZoneInfo("UTC"),
        first_handoff=datetime(1970, 1, 1),
        period=timedelta(weeks=52 * 100),
        freq=rrule.WEEKLY,
        interval=52 * 100,
        elapsed=True,
    )


# -- queries ---------------------------------------------------------------------------


def who_is_on_call(schedule: Schedule, at: datetime) -> str | None:
    """The person ref on call at ``at``, or None (a gap)."""
    at = _aware(at)
    if schedule.overrides and schedule._override_starts[0] <= at:
        for override in reversed(schedule.overrides):
            if override.start <= at < override.end:
                return override.person
    for layer in reversed(schedule.layers):
        who = layer.at(at)
        if who is not None:
            return who
    return None


@dataclass
class _Piece:
    start: datetime
    end: datetime
    person: str
    layer: str
    rank: int = field(default=0)


def shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """Who is on call over [start, end): consecutive shifts (UTC), gaps left out. Adjacent
    pieces of the same person from the same layer are merged."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        return []
    pieces: list[_Piece] = []
    for rank, layer in enumerate(schedule.layers):
        pieces += [_Piece(a, b, who, layer.name, rank) for a, b, who in layer.intervals(start, end)]
    top = len(schedule.layers)
    for offset, override in enumerate(schedule.overrides):
        a, b = max(override.start, start), min(override.end, end)
        if a < b:
            pieces.append(_Piece(a, b, override.person, "override", top + offset))
    bounds = sorted({start, end, *(p.start for p in pieces), *(p.end for p in pieces)})
    starts = sorted(pieces, key=lambda p: p.start)
    # Sweep: a heap of the pieces begun so far, highest rank on top; a piece that has
    # ended is dropped when it reaches the top (pieces of one rank never overlap).
    active: list[tuple[int, int, _Piece]] = []
    next_piece = 0
    out: list[Shift] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if lo >= end:
            break
        while next_piece < len(starts) and starts[next_piece].start <= lo:
            piece = starts[next_piece]
            heapq.heappush(active, (-piece.rank, next_piece, piece))
            next_piece += 1
        while active and active[0][2].end <= lo:
            heapq.heappop(active)
        if not active:
            continue
        best = active[0][2]
        last = out[-1] if out else None
        if last and last.end == lo and last.person == best.person and last.layer == best.layer:
            out[-1] = Shift(last.person, last.start, hi, last.layer)
        else:
            out.append(Shift(best.person, lo, hi, best.layer))
    return out


def gaps(schedule: Schedule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The spans of [start, end) with nobody on call (UTC)."""
    start, end = _aware(start), _aware(end)
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    for shift in shifts(schedule, start, end):
        if shift.start > cursor:
            out.append((cursor, shift.start))
        cursor = max(cursor, shift.end)
    if cursor < end:
        out.append((cursor, end))
    return out
