"""``autopilot schedule`` and ``autopilot jobs run`` (once per slot, in process on SQLite)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli.schedule import describe_schedule
from app.db import make_engine
from app.models import JobRun, Post
from app.workflows.jobs import JOBS
from tests.cli import autopilot


def chained(name: str, now: datetime, count: int = 3) -> list[datetime]:
    times, current = [], now
    for _ in range(count):
        current = JOBS[name].next_fire(current)
        times.append(current)
    return times


def test_schedule_at_a_frozen_instant_matches_the_scheduler():
    now = datetime(2026, 11, 28, 23, 59, 30, tzinfo=UTC)  # a Saturday, a minute before Sunday
    rows = {row["name"]: row for row in describe_schedule(now)}
    assert set(rows) == set(JOBS)
    for name, row in rows.items():
        assert row["next_fires"] == chained(name, now)
        assert row["cron"] == JOBS[name].cron and row["queue"] == JOBS[name].queue
    assert rows["weekly_report"]["next_fires"][0] == datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert rows["daily_generation"]["next_fires"] == [datetime(2026, 11, d, 6, 0, tzinfo=UTC) for d in (29, 30)] + [
        datetime(2026, 12, 1, 6, 0, tzinfo=UTC)]
    assert rows["sweep_stuck_posts"]["next_fires"][:2] == [datetime(2026, 11, 29, 0, 0, tzinfo=UTC),
                                                           datetime(2026, 11, 29, 0, 15, tzinfo=UTC)]


def test_schedule_json_shape(sqlite_url):
    before = datetime.now(UTC)
    result = autopilot(sqlite_url, "schedule", "--json")
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(JOBS)
    for row in rows:
        assert set(row) == {"name", "cron", "timezone", "queue", "description", "catch_up_seconds", "next_fires",
                            "steps"}
        assert row["steps"] and all(step["name"] and step["description"] for step in row["steps"])
        fires = [datetime.fromisoformat(t) for t in row["next_fires"]]
        assert fires in (chained(row["name"], before), chained(row["name"], after))
        assert all(t.utcoffset() == timedelta(0) for t in fires)
    by_name = {r["name"]: r for r in rows}
    assert by_name["daily_generation"]["catch_up_seconds"] == 6 * 3600
    assert by_name["dispatch_due_posts"]["catch_up_seconds"] is None
    # Every piece of periodic work is a named step of a job, listed with its description.
    steps = {step["name"] for row in rows for step in row["steps"]}
    assert {"claim_due_posts", "catch_up_missed_slots", "recover_stuck_posts", "requeue_stale_executions",
            "send_pending_emails", "prune_old_claims", "warn_expiring_accounts"} <= steps
    text = autopilot(sqlite_url, "schedule").stdout
    assert "daily_generation" in text and "warn_expiring_accounts" in text


def _counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with Session(engine) as session:
        counts = (session.scalar(select(func.count()).select_from(Post)) or 0,
                  session.scalar(select(func.count()).select_from(JobRun)) or 0)
    engine.dispose()
    return counts


def test_jobs_run_generates_once_per_slot(sqlite_url):
    created = autopilot(sqlite_url, "users", "create", "a@example.com", "--autonomous", "--topic", "python",
                        "--platform", "twitter=09:00", "--frequency", "7")
    assert created.returncode == 0, created.stderr
    # The next slot, so its 09:00 posting time lies ahead whatever the hour of the test run.
    slot = JOBS["daily_generation"].next_fire(datetime.now(UTC)).isoformat()

    first = autopilot(sqlite_url, "jobs", "run", "daily_generation", "--slot", slot)
    assert first.returncode == 0, first.stderr
    assert "daily_generation ran" in first.stdout
    posts, runs = _counts(sqlite_url)
    assert posts >= 1 and runs == 1

    second = autopilot(sqlite_url, "jobs", "run", "daily_generation", "--slot", slot, "--json")
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["ran"] is False and data["run"]["status"] == "succeeded"
    assert _counts(sqlite_url) == (posts, 1)
    third = autopilot(sqlite_url, "jobs", "run", "daily_generation", "--slot", slot)
    assert "already ran for this slot" in third.stdout and "nothing done" in third.stdout
    assert _counts(sqlite_url) == (posts, 1)


def test_jobs_run_defaults_to_the_latest_slot_and_refuses_unknown_jobs(sqlite_url):
    before = datetime.now(UTC)
    result = autopilot(sqlite_url, "jobs", "run", "daily_generation", "--json")
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ran"] is True and data["run"]["fanned_out"] == 0
    assert datetime.fromisoformat(data["slot"]) in (JOBS["daily_generation"].latest_fire(before),
                                                    JOBS["daily_generation"].latest_fire(after))

    unknown = autopilot(sqlite_url, "jobs", "run", "nightly_magic")
    assert unknown.returncode == 2
    assert "nightly_magic" in unknown.stderr and "daily_generation" in unknown.stderr
    bad_slot = autopilot(sqlite_url, "jobs", "run", "daily_generation", "--slot", "tomorrow")
    assert bad_slot.returncode == 2 and "slot" in bad_slot.stderr
    assert _counts(sqlite_url) == (0, 1)
