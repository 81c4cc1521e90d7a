"""Pure time logic: which posting slots fall in a UTC window (no I/O, no database).

A slot is a pure function of the user's *local calendar date*, so the daily job's consecutive
[start, end) windows tile exactly: every slot has one UTC instant, and half-open windows that
touch end to end see it exactly once, however often a window is re-run.

The rules, in the order they are applied to each local date:

1. **How many posts that day** (:func:`posts_on_day`): the ``f`` posts of a local ISO week
   (Monday-Sunday) are spread Bresenham-style from Monday: post ``k`` (0-based) lands on weekday
   ``floor(7 * k / f)``. So f=1 is Monday, f=2 Mon/Thu, f=3 Mon/Wed/Fri, f=6 Mon-Sat, f=7 daily,
   f=14 twice daily; when the days cannot be equal the extra posts go early in the week, and Sunday
   is always among the lightest days. Each week holds exactly ``f`` posts per platform.
2. **At which local times** (:func:`times_for_day`): the distinct configured times, sorted. A day
   needing ``n`` posts uses the first ``n``. If it needs more than were configured, each extra time
   is the midpoint (rounded down to the minute) of the widest gap between the times already chosen
   and the bounds of the 07:00-22:00 posting day; ties go to the earliest gap. One time of 09:00
   with two posts a day gives 09:00 and 15:30.
3. **Which instant** (:func:`local_to_utc`): a wall time that does not exist (DST gap) moves to the
   first instant after the gap (02:30 on a US spring-forward day is 03:00 EDT); an ambiguous one
   (DST overlap) is its first occurrence only, so it is posted once, not twice. Should two times
   of one day collapse onto the same instant (both inside one gap), the later ones are pushed one
   minute apart so the week still holds ``f`` distinct slots.

``Slot.local_time`` keeps the nominal time of rule 2, not the shifted wall time: with
``(platform, local_date, local_time)`` it names the slot stably for idempotent claiming.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import InvalidValue

#: The fewest posts per week per platform a user can ask for.
MIN_FREQUENCY = 1
#: The most posts per week per platform a user can ask for (two a day).
MAX_FREQUENCY = 14
#: Local start of the span in which extra posting times are derived (inclusive bound).
POSTING_DAY_START = time(7, 0)
#: Local end of the span in which extra posting times are derived (exclusive bound).
POSTING_DAY_END = time(22, 0)

_HHMM = re.compile(r"([0-9]{2}):([0-9]{2})")
_ONE_DAY = timedelta(days=1)
_ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Slot:
    """One post due on one platform: when (UTC) and which local date and nominal time it is for."""

    platform: str
    at: datetime
    local_date: date
    local_time: time


def parse_hhmm(value: str) -> time:
    """Parse a strict two-digit ``"HH:MM"`` local time (00:00-23:59).

    Strict because the validation layer stores exactly this form; anything looser ("9:00",
    " 09:00", "24:00") is data that bypassed it and should fail loudly, not be guessed at.
    """
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidValue(
            f'posting time must be "HH:MM" with two-digit hours and minutes, got {value!r}'
        )
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise InvalidValue(f"posting time must be between 00:00 and 23:59, got {value!r}")
    return time(hour, minute)


def posts_on_day(local_date: date, frequency: int) -> int:
    """How many posts a platform gets on ``local_date`` with ``frequency`` posts per ISO week.

    Post ``k`` of the week (``0 <= k < f``) lands on weekday ``floor(7k / f)`` (Monday = 0), so the
    count for weekday ``d`` is ``ceil((d + 1) f / 7) - ceil(d f / 7)``. The terms telescope: any
    Monday-Sunday week sums to ``f`` exactly, and a day never gets more than ``ceil(f / 7)``.
    Only the weekday matters, so the answer is the same whichever window asks.
    """
    if frequency < 0:
        raise InvalidValue(f"frequency must be >= 0 posts per week, got {frequency}")
    d = local_date.weekday()
    return -(-(d + 1) * frequency // 7) + (-d * frequency // 7)


def times_for_day(times: list[time], count: int) -> list[time]:
    """The sorted local times used on a day that needs ``count`` posts.

    ``count`` <= number of distinct times: the earliest ``count`` of them (a user's first time is
    taken as their favourite). More: every configured time plus derived ones, each the midpoint
    (floored to the minute) of the widest gap between chosen times within 07:00-22:00, earliest
    gap on ties. Derived times are distinct, on the same day and at waking hours.
    """
    if count < 0:
        raise InvalidValue(f"count must be >= 0, got {count}")
    chosen = sorted(set(times))
    if count <= len(chosen):
        return chosen[:count]
    low, high = _minutes(POSTING_DAY_START), _minutes(POSTING_DAY_END)
    taken = {_minutes(t) for t in chosen if low < _minutes(t) < high}
    derived: list[time] = []
    for _ in range(count - len(chosen)):
        bounds = sorted(taken | {low, high})
        a, b = max(zip(bounds, bounds[1:], strict=False), key=lambda gap: gap[1] - gap[0])
        if b - a < 2:
            raise InvalidValue(f"no room for {count} distinct posting times between 07:00 and 22:00")
        middle = (a + b) // 2
        taken.add(middle)
        derived.append(time(middle // 60, middle % 60))
    return sorted(chosen + derived)


def local_to_utc(local_date: date, local_time: time, tz: ZoneInfo) -> datetime:
    """The aware UTC instant at which ``local_time`` on ``local_date`` happens in ``tz``.

    Ambiguous wall times (DST overlap) resolve to their first occurrence (``fold=0``). Wall times
    that do not exist (DST gap) resolve to the first instant after the gap, i.e. the transition
    itself: the user asked for "at that point of the night", and the clock reached it then.
    """
    wall = datetime.combine(local_date, local_time, tzinfo=tz)
    instant = wall.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # In a gap, fold=0 reads the wall time with the old offset (an instant after the transition)
    # and fold=1 with the new one (an instant before it); bisect between them to the second.
    new_offset = instant.astimezone(tz).utcoffset()
    before, after = int(wall.replace(fold=1).timestamp()), int(instant.timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def posting_slots(
    *,
    timezone: str,
    platforms: list[str],
    posting_times: dict[str, list[str]],
    frequency: int,
    start: datetime,
    end: datetime,
) -> list[Slot]:
    """Every slot with ``start <= at < end``, sorted by ``(at, platform)``.

    ``start`` and ``end`` must be aware (any offset); naive values are refused because the host's
    time zone must never leak in. Local dates from the day before ``start`` to the day after ``end``
    are evaluated, which covers windows over two or three local dates (UTC+14, UTC-11, DST days)
    and gap shifts across midnight; the UTC filter alone decides which window owns a slot.
    """
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidValue(
                f"{name} must be an aware datetime (e.g. tzinfo=UTC), got naive {value}"
            )
    if end < start:
        raise InvalidValue(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    if not MIN_FREQUENCY <= frequency <= MAX_FREQUENCY:
        raise InvalidValue(
            f"frequency must be {MIN_FREQUENCY}..{MAX_FREQUENCY} posts per week, got {frequency}"
        )
    tz = _zone(timezone)
    configured = {platform: _platform_times(platform, posting_times) for platform in platforms}

    slots: list[Slot] = []
    day, last = start.astimezone(tz).date() - _ONE_DAY, end.astimezone(tz).date() + _ONE_DAY
    while day <= last:
        count = posts_on_day(day, frequency)
        for platform, times in configured.items():
            if count:
                day_slots = _day_slots(platform, day, times, count, tz)
                slots.extend(s for s in day_slots if start <= s.at < end)
        day += _ONE_DAY
    return sorted(slots, key=lambda s: (s.at, s.platform))


def next_slots(
    *,
    timezone: str,
    platforms: list[str],
    posting_times: dict[str, list[str]],
    frequency: int,
    after: datetime,
    count: int,
) -> list[Slot]:
    """The first ``count`` slots strictly after ``after`` (e.g. to preview a user's schedule)."""
    found: list[Slot] = []
    window = timedelta(days=7)  # every week holds >= 1 slot per platform, so this terminates
    start = after + timedelta(microseconds=1)
    while platforms and len(found) < count:
        found.extend(
            posting_slots(
                timezone=timezone,
                platforms=platforms,
                posting_times=posting_times,
                frequency=frequency,
                start=start,
                end=start + window,
            )
        )
        start += window
    return found[:count]


def _day_slots(platform: str, day: date, times: list[time], count: int, tz: ZoneInfo) -> list[Slot]:
    """One platform's slots on one local date, at strictly increasing instants."""
    slots: list[Slot] = []
    for local_time in times_for_day(times, count):
        at = local_to_utc(day, local_time, tz)
        if slots and at <= slots[-1].at:  # two times inside one DST gap: keep them distinct
            at = slots[-1].at + _ONE_MINUTE
        slots.append(Slot(platform=platform, at=at, local_date=day, local_time=local_time))
    return slots


def _platform_times(platform: str, posting_times: dict[str, list[str]]) -> list[time]:
    values = posting_times.get(platform)
    if not values:
        raise InvalidValue(f"platform {platform!r} has no posting_times; give at least one 'HH:MM'")
    return [parse_hhmm(v) for v in values]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidValue(f"unknown IANA time zone {name!r} (e.g. 'America/New_York')") from exc


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute
