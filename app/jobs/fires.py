"""When a cron fires, in UTC: pure arithmetic over Periodiq's own parsed specs (no I/O).

A minute is a fire of a cron when Periodiq's ``CronSpec.validate`` accepts it, exactly as its
scheduler decides, and the next fire is Periodiq's ``next_valid_date``; so ``autopilot
schedule``, the catch-up and the tests compute what the scheduler really does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
from periodiq import CronSpec

__all__ = ["fire_times", "latest_fire", "next_fire", "next_fires"]


def next_fire(spec: CronSpec, after: datetime) -> datetime:
    """The first fire strictly after ``after`` (to the minute), in UTC."""
    instant = pendulum.instance(after.astimezone(UTC))
    return _to_utc(spec.next_valid_date(instant))


def next_fires(spec: CronSpec, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fires strictly after ``after``."""
    times: list[datetime] = []
    for _ in range(count):
        after = next_fire(spec, after)
        times.append(after)
    return times


def fire_times(spec: CronSpec, start: datetime, end: datetime) -> list[datetime]:
    """Every fire in [start, end)."""
    times: list[datetime] = []
    current = next_fire(spec, start - timedelta(minutes=1))
    while current < end:
        times.append(current)
        current = next_fire(spec, current)
    return times


def latest_fire(spec: CronSpec, now: datetime, lookback: timedelta) -> datetime | None:
    """The last fire at or before ``now`` within ``lookback``.

    Steps back from ``now`` day by day, and within a matching day through the spec's hours
    and minutes in descending order, so a look-up costs microseconds whatever the cron
    (walking forward from the start of the lookback took 11,520 steps for every minute).
    """
    at = now.astimezone(UTC).replace(second=0, microsecond=0)
    earliest = now - lookback
    today = at.replace(hour=0, minute=0)
    hours = sorted(spec.hour, reverse=True)
    minutes = sorted(spec.minute, reverse=True)
    day = today
    while day + timedelta(days=1) > earliest:
        # With the first allowed hour and minute, validate() judges only the day: month,
        # day of month and weekday (with cron's either-or rule when both are restricted).
        if spec.validate(day.replace(hour=spec.hour[0], minute=spec.minute[0])):
            for hour in hours:
                if day == today and hour > at.hour:
                    continue
                for minute in minutes:
                    candidate = day.replace(hour=hour, minute=minute)
                    if candidate <= at:
                        return candidate if candidate >= earliest else None
        day -= timedelta(days=1)
    return None


def _to_utc(value: datetime) -> datetime:
    """A plain aware-UTC datetime from pendulum's (workflows and the database want stdlib types)."""
    return datetime.fromtimestamp(value.timestamp(), tz=UTC).replace(second=0, microsecond=0)
