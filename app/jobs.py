"""Periodic jobs: their cron specs (UTC), their fire times, and the once-per-slot claim.

The cron specs are Periodiq's own :class:`periodiq.CronSpec` objects, evaluated on UTC
pendulum instants, so ``autopilot schedule``, the catch-up logic and the tests compute fire
times through the very code the scheduler runs. A (job, slot) row with a unique key is claimed
before any work starts: a second scheduler, a redelivered message or a manual trigger for the
same slot finds the row and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import pendulum
from periodiq import CronSpec, cron
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import ExecutionStatus, JobRun


@dataclass(frozen=True)
class PeriodicJob:
    """One cron-driven job: what it is called, when it fires (UTC) and on which queue."""

    name: str
    cron: str
    queue: str
    description: str
    #: How late a missed slot is still run once the scheduler or workers return; None: never.
    catch_up: timedelta | None = None

    @cached_property
    def spec(self) -> CronSpec:
        """The parsed cron, parsed once per job (Periodiq's own parser and field sets)."""
        return cron(self.cron)

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (to the minute), in UTC."""
        instant = pendulum.instance(after.astimezone(UTC))
        return _to_utc(self.spec.next_valid_date(instant))

    def fire_times(self, start: datetime, end: datetime) -> list[datetime]:
        """Every fire time in [start, end)."""
        times: list[datetime] = []
        current = self.next_fire(start - timedelta(minutes=1))
        while current < end:
            times.append(current)
            current = self.next_fire(current)
        return times

    def next_fires(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times strictly after ``after``."""
        times: list[datetime] = []
        for _ in range(count):
            after = self.next_fire(after)
            times.append(after)
        return times

    def latest_fire(self, now: datetime, lookback: timedelta = timedelta(days=8)) -> datetime | None:
        """The last fire time at or before ``now`` within ``lookback``.

        Steps back from ``now`` day by day, and within a matching day through the spec's hours
        and minutes in descending order, so a look-up costs microseconds whatever the cron
        (walking forward from the start of the lookback took 11,520 steps for every-minute).
        A minute fires when Periodiq's own ``CronSpec.validate`` accepts it, as in its scheduler.
        """
        spec = self.spec
        at = now.astimezone(UTC).replace(second=0, microsecond=0)
        earliest = now - lookback
        hours = sorted(spec.hour, reverse=True)
        minutes = sorted(spec.minute, reverse=True)
        day = at.replace(hour=0, minute=0)
        while day + timedelta(days=1) > earliest:
            # Day-level check first: with the first allowed hour and minute, validate() only
            # judges the month, day of month and weekday.
            if spec.validate(day.replace(hour=spec.hour[0], minute=spec.minute[0])):
                for hour in hours:
                    if day == at.replace(hour=0, minute=0) and hour > at.hour:
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


def build_jobs(daily_catch_up: timedelta = timedelta(hours=6),
               weekly_catch_up: timedelta = timedelta(hours=24)) -> dict[str, PeriodicJob]:
    """The schedule. Every spec is read as UTC whatever the host's TZ (see app.broker)."""
    jobs = [
        PeriodicJob("daily_generation", "0 6 * * *", "autonomous",
                    "Research, write and schedule the next 24 hours of posts for every opted-in user",
                    catch_up=daily_catch_up),
        PeriodicJob("metrics_collection", "0 2 * * *", "metrics",
                    "Collect engagement for posts published in the last 24 hours and 7 days ago",
                    catch_up=daily_catch_up),
        # Sunday is written "0,7": Periodiq's validate() compares isoweekday() (Sunday = 7)
        # while next_valid_date() uses Sunday = 0, so a plain "0" would never fire.
        PeriodicJob("weekly_report", "0 8 * * 0,7", "reports",
                    "Write each user's weekly performance report with recommendations",
                    catch_up=weekly_catch_up),
        PeriodicJob("dispatch_due_posts", "* * * * *", "posting",
                    "Claim posts due in the next two minutes and queue them for their exact second"),
        PeriodicJob("sweep_stuck_posts", "*/15 * * * *", "posting",
                    "Safety net: re-queue lost posts, reconcile interrupted publishes, catch up missed slots"),
    ]
    return {job.name: job for job in jobs}


JOBS = build_jobs()


def jobs_for(settings: Settings) -> dict[str, PeriodicJob]:
    """The schedule with this deployment's catch-up windows (the crons are those of JOBS)."""
    return build_jobs(timedelta(hours=settings.daily_catch_up_hours),
                      timedelta(hours=settings.weekly_catch_up_hours))


def claim_slot(session: Session, job: str, slot: datetime, *, trigger: str, claim_id: str | None,
               now: datetime) -> JobRun | None:
    """Claim (job, slot) for this message; None when somebody else holds it.

    The message that made the claim may claim again (a redelivery after a crash, or a
    retry) while the run is unfinished, so an interrupted fan-out resumes instead of stopping.
    """
    run = JobRun(job=job, slot=slot, trigger=trigger, claimed_by=claim_id, claimed_at=now,
                 status=ExecutionStatus.RUNNING)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
        return run
    except IntegrityError:
        pass
    if claim_id is None:
        return None
    resumed = session.execute(
        update(JobRun)
        .where(JobRun.job == job, JobRun.slot == slot, JobRun.claimed_by == claim_id,
               JobRun.status != ExecutionStatus.SUCCEEDED)
        .values(status=ExecutionStatus.RUNNING)
        .execution_options(synchronize_session=False)
    )
    if resumed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.scalar(select(JobRun).where(JobRun.job == job, JobRun.slot == slot))


def finish_slot(run: JobRun, *, now: datetime, fanned_out: int = 0, error: str | None = None) -> None:
    run.status = ExecutionStatus.FAILED if error else ExecutionStatus.SUCCEEDED
    run.finished_at = now
    run.fanned_out = fanned_out
    run.error = error


def missed_slots(session: Session, now: datetime, jobs: dict[str, PeriodicJob] = JOBS,
                 *, settle: timedelta = timedelta(minutes=2)) -> list[tuple[str, datetime]]:
    """Slots of catch-up jobs that fired within their window but were never claimed.

    ``settle`` leaves the regular tick a moment to arrive before a catch-up competes with it
    (harmless either way: the claim decides). One query for every job.
    """
    candidates: list[tuple[str, datetime]] = []
    for job in jobs.values():
        if job.catch_up is None:
            continue
        latest = job.latest_fire(now - settle)
        if latest is not None and now - latest <= job.catch_up:
            candidates.append((job.name, latest))
    if not candidates:
        return []
    claimed = {tuple(row) for row in session.execute(
        select(JobRun.job, JobRun.slot).where(
            JobRun.job.in_([name for name, _ in candidates]),
            JobRun.slot.in_([slot for _, slot in candidates]))
    )}
    return [c for c in candidates if c not in claimed]


#: Jobs that fire every few minutes: their claims are only needed while a duplicate could
#: still arrive, so old ones are deleted (1,440 dispatch rows a day otherwise).
FREQUENT_JOBS = ("dispatch_due_posts", "sweep_stuck_posts")
#: How long claims of frequent jobs are kept.
DEFAULT_FREQUENT_RETENTION = timedelta(days=7)


def prune_job_runs(session: Session, now: datetime, *, keep: timedelta = DEFAULT_FREQUENT_RETENTION) -> int:
    """Delete finished claims of the frequent jobs older than ``keep``; daily and weekly ones stay."""
    result = session.execute(
        delete(JobRun).where(JobRun.job.in_(FREQUENT_JOBS), JobRun.slot < now - keep,
                             JobRun.status != ExecutionStatus.RUNNING)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
