"""Fire-time arithmetic (app/jobs/fires.py): pure, checked against a forward walk of the same cron."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.jobs import fires
from app.workflows.jobs import JOBS

#: Random instants over three years (two leap-free, one containing 2028-02-29), fixed seed.
RNG = random.Random(20261127)
INSTANTS = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=RNG.randrange(3 * 366 * 86400))
            for _ in range(120)] + [datetime(2028, 2, 29, 6, 0, tzinfo=UTC), datetime(2028, 3, 1, 0, 0, tzinfo=UTC)]


def walked_latest(job_name: str, now: datetime, lookback: timedelta) -> datetime | None:
    """The slow definition: every fire in the lookback, walking forward; the last one."""
    times = JOBS[job_name].fire_times(now - lookback, now + timedelta(microseconds=1))
    return times[-1] if times else None


@pytest.mark.parametrize(("job", "lookback"), [
    ("daily_generation", timedelta(days=8)), ("metrics_collection", timedelta(days=8)),
    ("weekly_report", timedelta(days=8)),
    # The quarter-hour job's walk is 96 fires a day: two hours say the same, faster.
    ("sweep_stuck_posts", timedelta(hours=2)),
])
def test_latest_fire_equals_the_last_fire_of_a_forward_walk(job, lookback):
    for now in INSTANTS:
        assert JOBS[job].latest_fire(now, lookback) == walked_latest(job, now, lookback), now


def test_latest_fire_of_the_minute_job_is_the_current_minute():
    for now in INSTANTS:
        assert JOBS["dispatch_due_posts"].latest_fire(now) == now.replace(second=0, microsecond=0)


@pytest.mark.parametrize("lookback", [timedelta(minutes=1), timedelta(hours=5), timedelta(days=1), timedelta(days=6)])
def test_a_fire_before_the_lookback_is_not_returned(lookback):
    for now in INSTANTS[:40]:
        for job in ("daily_generation", "weekly_report"):
            assert JOBS[job].latest_fire(now, lookback) == walked_latest(job, now, lookback), (job, now)


def test_the_weekly_report_fires_on_sunday_whatever_the_weekday_asked_from():
    sunday = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    for day in range(7):
        now = sunday + timedelta(days=day, hours=1)
        assert JOBS["weekly_report"].latest_fire(now) == sunday


def test_next_fire_is_strictly_after_and_minute_aligned():
    for now in INSTANTS:
        for job in JOBS.values():
            after = job.next_fire(now)
            assert after > now and after.second == 0 and after.microsecond == 0
            assert fires.latest_fire(job.spec, after, timedelta(days=8)) == after
