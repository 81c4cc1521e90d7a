"""Every periodic job fires at its UTC times, whatever the host's TZ.

The fire times come from Periodiq's own Scheduler (tests/e2e/schedule_probe.py) running in a
subprocess with TZ set, across the 2026 US and EU daylight-saving changes. The probe processes
run on a simulated clock: no real instant is involved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.workflows.jobs import JOBS

HOST_ZONES = ("UTC", "America/New_York", "Asia/Tokyo")


@dataclass(frozen=True)
class Window:
    """A simulated period and the jobs watched over it."""

    start: datetime
    end: datetime
    jobs: tuple[str, ...]


#: The daily and weekly jobs over five weeks from a Sunday, across the 2026 US (8 March) and
#: EU (29 March) daylight-saving changes.
SLOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC),
              ("daily_generation", "metrics_collection", "weekly_report"))
#: The every-minute and quarter-hour jobs over two days around the US change, where a New York
#: host's clock jumps from 02:00 to 03:00 (five weeks of minutes would cost the same checks 17x).
FREQUENT = Window(datetime(2026, 3, 7, 12, tzinfo=UTC), datetime(2026, 3, 9, 12, tzinfo=UTC),
                  ("dispatch_due_posts", "sweep_stuck_posts"))
WINDOWS = (SLOW, FREQUENT)


def expected() -> dict[str, list[datetime]]:
    """Written out by hand from the specification, not from any cron code."""
    days = [SLOW.start + timedelta(days=d) for d in range((SLOW.end - SLOW.start).days)]
    span = int((FREQUENT.end - FREQUENT.start).total_seconds() // 60)
    minutes = [FREQUENT.start + timedelta(minutes=m) for m in range(span)]
    return {
        "daily_generation": [d.replace(hour=6) for d in days],
        "metrics_collection": [d.replace(hour=2) for d in days],
        "weekly_report": [d.replace(hour=8) for d in days if d.weekday() == 6],
        "dispatch_due_posts": minutes,
        "sweep_stuck_posts": [m for m in minutes if m.minute % 15 == 0],
    }


@pytest.fixture(scope="module")
def fired() -> dict[str, dict[str, list[datetime]]]:
    processes = {
        (zone, window): subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.schedule_probe", window.start.isoformat(), window.end.isoformat(),
             ",".join(window.jobs)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TZ": zone, "REDIS_URL": "", "DATABASE_URL": "sqlite://"},
        )
        for zone in HOST_ZONES for window in WINDOWS
    }
    results: dict[str, dict[str, list[datetime]]] = {zone: {} for zone in HOST_ZONES}
    for (zone, _), process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        results[zone].update({job: [datetime.fromisoformat(t) for t in times] for job, times in json.loads(out).items()})
    return results


@pytest.mark.parametrize("zone", HOST_ZONES)
@pytest.mark.parametrize("job", sorted(JOBS))
def test_job_fires_at_its_utc_times(fired, zone, job):
    assert fired[zone][job] == expected()[job]


def test_weekly_report_fires_on_sundays_only(fired):
    assert {t.weekday() for t in fired["Asia/Tokyo"]["weekly_report"]} == {6}
    assert len(fired["Asia/Tokyo"]["weekly_report"]) == 5


def test_the_simulated_windows_cover_every_job():
    assert sorted(job for window in WINDOWS for job in window.jobs) == sorted(JOBS)


@pytest.mark.parametrize("job", sorted(JOBS))
def test_next_fire_agrees_with_the_scheduler(fired, job):
    """`autopilot schedule` and the catch-up logic compute what the scheduler fires."""
    times = fired["UTC"][job][:200]
    for before, after in zip(times, times[1:], strict=False):
        assert JOBS[job].next_fire(before) == after
        assert JOBS[job].latest_fire(after + timedelta(seconds=30)) == after
