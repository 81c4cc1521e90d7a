"""Once per slot: a (job, slot) row with a unique key is claimed before any work starts.

A second scheduler, a redelivered message or a manual trigger for the same slot finds the row
and does nothing. The message that made the claim may claim again while the run is unfinished
(a redelivery after a crash), so an interrupted run resumes instead of stopping.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.jobs.spec import PeriodicJob
from app.models import ExecutionStatus, JobRun

__all__ = ["DEFAULT_CATCH_UP_SETTLE", "claim_slot", "finish_slot", "missed_slots", "prune_job_runs"]

#: How long after a fire the regular tick is given to arrive before a catch-up competes with it.
DEFAULT_CATCH_UP_SETTLE = timedelta(minutes=2)


def claim_slot(session: Session, job: str, slot: datetime, *, trigger: str, message_id: str | None,
               now: datetime) -> JobRun | None:
    """Claim (job, slot) for the message ``message_id``; None when somebody else holds it."""
    run = JobRun(job=job, slot=slot, trigger=trigger, claimed_by_message=message_id, claimed_at=now,
                 status=ExecutionStatus.RUNNING)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
        return run
    except IntegrityError:
        pass
    if message_id is None:
        return None
    resumed = session.execute(
        update(JobRun)
        .where(JobRun.job == job, JobRun.slot == slot, JobRun.claimed_by_message == message_id,
               JobRun.status != ExecutionStatus.SUCCEEDED)
        .values(status=ExecutionStatus.RUNNING)
        .execution_options(synchronize_session=False)
    )
    if resumed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.scalar(select(JobRun).where(JobRun.job == job, JobRun.slot == slot))


def finish_slot(run: JobRun, *, now: datetime, fanned_out: int = 0, error: str | None = None) -> None:
    """Record the end of a claimed run: how many messages it sent, or why it failed."""
    run.status = ExecutionStatus.FAILED if error else ExecutionStatus.SUCCEEDED
    run.finished_at = now
    run.fanned_out = fanned_out
    run.error = error


def missed_slots(session: Session, now: datetime, jobs: Mapping[str, PeriodicJob], *,
                 settle: timedelta = DEFAULT_CATCH_UP_SETTLE) -> list[tuple[str, datetime]]:
    """Slots of catch-up jobs that fired within their window but were never claimed.

    One query for every job. ``settle`` leaves the regular tick a moment to arrive first
    (harmless either way: the claim decides).
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


def prune_job_runs(session: Session, now: datetime, jobs: Mapping[str, PeriodicJob]) -> int:
    """Delete finished claims older than their job's retention (the frequent jobs'); one statement."""
    expired = [(JobRun.job == job.name) & (JobRun.slot < now - job.claim_retention)
               for job in jobs.values() if job.claim_retention is not None]
    if not expired:
        return 0
    result = session.execute(
        delete(JobRun).where(or_(*expired), JobRun.status != ExecutionStatus.RUNNING)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
