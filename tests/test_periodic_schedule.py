"""Every periodic job fires at its UTC times over five weeks, whatever the host's TZ.

The fire times come from Periodiq's own Scheduler (tests/schedule_probe.py) running in a
subprocess with TZ set, across the 2026 US and EU daylight-saving changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from app.workflows.jobs import JOBS

START = datetime(2026, 3, 1, tzinfo=UTC)  # a Sunday; spans Mar 8 (US) and Mar 29 (EU)
END = START + timedelta(weeks=5)
HOST_ZONES = ("UTC", "America/New_York", "Asia/Tokyo")


def expected() -> dict[str, list[datetime]]:
    """Written out by hand from the specification, not from any cron code."""
    days = [START + timedelta(days=d) for d in range(35)]
    minutes = [START + timedelta(minutes=m) for m in range(35 * 24 * 60)]
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
        zone: subprocess.Popen(
            [sys.executable, "-m", "tests.schedule_probe", START.isoformat(), END.isoformat()],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TZ": zone, "REDIS_URL": "", "DATABASE_URL": "sqlite://"},
        )
        for zone in HOST_ZONES
    }
    results = {}
    for zone, process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        results[zone] = {job: [datetime.fromisoformat(t) for t in times] for job, times in json.loads(out).items()}
    return results


@pytest.mark.parametrize("zone", HOST_ZONES)
@pytest.mark.parametrize("job", sorted(JOBS))
def test_job_fires_at_its_utc_times_for_five_weeks(fired, zone, job):
    assert fired[zone][job] == expected()[job]


def test_weekly_report_fires_on_sundays_only(fired):
    assert {t.weekday() for t in fired["Asia/Tokyo"]["weekly_report"]} == {6}
    assert len(fired["Asia/Tokyo"]["weekly_report"]) == 5


@pytest.mark.parametrize("job", sorted(JOBS))
def test_next_fire_agrees_with_the_scheduler(fired, job):
    """`autopilot schedule` and the catch-up logic compute what the scheduler fires."""
    times = fired["UTC"][job][:200]
    for before, after in zip(times, times[1:], strict=False):
        assert JOBS[job].next_fire(before) == after
        assert JOBS[job].latest_fire(after + timedelta(seconds=30)) == after
