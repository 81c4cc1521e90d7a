"""Success rates, durations and lateness from the database: what Flower showed, for this system.

Periodic jobs leave a :class:`~app.models.JobRun` per slot, per-user work a
:class:`~app.models.WorkflowExecution`, publishing a post row and ``post.reviewed`` audit rows.
All figures over a window ``[since, now]`` are computed here as plain functions over a session
(a replica's session when ``DATABASE_REPLICA_URL`` is set), so the CLI, the admin page, the
Prometheus endpoint and ``autopilot check`` agree by construction.

Percentiles are computed in Python over one column of one query (portable to SQLite); a day of
publishing at 10,000 posts is 10,000 floats.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.broker import DEFAULT_TIME_LIMIT_MS
from app.errors import InvalidValue
from app.jobs import PeriodicJob
from app.models import (
    AuditLog,
    ExecutionStatus,
    JobRun,
    Post,
    PostStatus,
    WorkflowExecution,
)
from app.platforms import KNOWN_PLATFORMS, display_name
from app.queues import Queue
from app.statuses import FAILURE_REVIEW_REASONS
from app.workflows.jobs import JOBS

#: The row of the posting queue's own unit of work, shown beside the jobs (one name on every page).
PUBLISHING = "publishing"
#: The row of every job's, per-user run's and publish's outcomes together (the chart's line).
ALL_WORK = "all work"
# Why a post waits in review when it is a failure to publish (FAILURE_REVIEW_REASONS, app.statuses).
# A post waiting for its user's approval has not failed: neither a success nor a failure until published.
#: A post still scheduled, queued or publishing this long after its time is stuck: the
#: dispatcher runs every minute and the sweeper every 15, so either has had its chance.
DEFAULT_STUCK_AFTER = timedelta(minutes=20)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between ranks; None when empty."""
    if not 0 <= q <= 100:
        raise InvalidValue(f"percentile {q} outside 0-100")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class RunStats:
    """Runs of one job (or of all jobs on one queue) over a window."""

    name: str
    queue: str
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    over_time_limit: int = 0
    durations_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def success_ratio(self) -> float | None:
        """Succeeded / finished runs (0-1, unrounded: ``/metrics``); None when nothing finished."""
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None

    @property
    def success_rate(self) -> float | None:
        """The success ratio in percent, to 0.01; None when nothing finished."""
        ratio = self.success_ratio
        return None if ratio is None else round(100 * ratio, 2)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("durations_ms")
        p50, p95 = percentile(self.durations_ms, 50), percentile(self.durations_ms, 95)
        return {**data, "success_rate": self.success_rate,
                "p50_ms": None if p50 is None else round(p50, 1),
                "p95_ms": None if p95 is None else round(p95, 1)}

    def add(self, other: RunStats) -> None:
        self.runs += other.runs
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.running += other.running
        self.over_time_limit += other.over_time_limit
        self.durations_ms.extend(other.durations_ms)


def per_user_row(job: str) -> str:
    """The row of a fan-out job's per-user runs (the executions list shows them under ``job``)."""
    return f"{job} per user"


@dataclass(frozen=True)
class Outcome:
    """One unit of work as every success rate counts it: where it belongs, when, how it ended.

    ``at`` is when it counts in a window: a slot's claim, a per-user run's creation, a post's
    publication or its hand-over to review for a failure.
    """

    name: str
    queue: str
    at: datetime
    #: ``succeeded``, ``failed`` or ``running`` (pending included).
    state: str
    duration_ms: float | None = None
    over_time_limit: bool = False


def _classify(name: str, queue: str, status: str, at: datetime, started: datetime, duration_ms: float | None,
              now: datetime, limit_ms: int) -> Outcome:
    if status == ExecutionStatus.SUCCEEDED or status == ExecutionStatus.FAILED:
        over = duration_ms is not None and duration_ms > limit_ms
        return Outcome(name, queue, at, str(status), duration_ms, over)
    if status == ExecutionStatus.RUNNING and (now - started).total_seconds() * 1000 > limit_ms:
        # Past its time limit and still "running": its message is gone, the run failed.
        return Outcome(name, queue, at, ExecutionStatus.FAILED.value, None, True)
    return Outcome(name, queue, at, ExecutionStatus.RUNNING.value, duration_ms)


def outcomes(session: Session, since: datetime, now: datetime, *, jobs: dict[str, PeriodicJob] = JOBS,
             time_limit_ms: int = DEFAULT_TIME_LIMIT_MS) -> list[Outcome]:
    """Every outcome in ``[since, now]``: the one definition behind the table, the chart,
    ``autopilot check`` and ``/metrics``. Publishing counts published posts as successes and
    posts handed to review for a failure (:data:`FAILURE_REVIEW_REASONS`) as failures."""
    found: list[Outcome] = []
    for name, status, claimed, finished in session.execute(
            select(JobRun.job, JobRun.status, JobRun.claimed_at, JobRun.finished_at)
            .where(JobRun.claimed_at >= since, JobRun.claimed_at <= now)):
        queue = jobs[name].queue if name in jobs else "?"
        duration = (finished - claimed).total_seconds() * 1000 if finished else None
        found.append(_classify(name, queue, status, claimed, claimed, duration, now, time_limit_ms))
    for workflow, status, created, started, duration in session.execute(
            select(WorkflowExecution.workflow, WorkflowExecution.status, WorkflowExecution.created_at,
                   WorkflowExecution.started_at, WorkflowExecution.duration_ms)
            .where(WorkflowExecution.created_at >= since, WorkflowExecution.created_at <= now)):
        name = per_user_row(workflow) if workflow in jobs and jobs[workflow].per_user is not None else workflow
        queue = jobs[workflow].queue if workflow in jobs else "?"
        if status == ExecutionStatus.PENDING:
            found.append(Outcome(name, queue, created, ExecutionStatus.RUNNING.value))
            continue
        found.append(_classify(name, queue, status, created, started or created, duration, now, time_limit_ms))
    for published, started in session.execute(
            select(Post.published_at, Post.publish_started_at)
            .where(Post.status == PostStatus.PUBLISHED, Post.published_at >= since, Post.published_at <= now)):
        if published is None:  # excluded by the WHERE clause; says so to the type checker
            continue
        duration = max(0.0, (published - started).total_seconds() * 1000) if started is not None else None
        found.append(Outcome(PUBLISHING, Queue.POSTING, published, ExecutionStatus.SUCCEEDED.value, duration))
    for (at,) in session.execute(_failures_to_publish(since, now, AuditLog.created_at)):
        found.append(Outcome(PUBLISHING, Queue.POSTING, at, ExecutionStatus.FAILED.value))
    return found


def _failures_to_publish(since: datetime, now: datetime, *columns: Any) -> Any:
    """Posts handed to review for a failure in the window (one audit row each)."""
    return (select(*columns).select_from(AuditLog).join(Post, Post.id == AuditLog.post_id)
            .where(AuditLog.action == "post.reviewed", AuditLog.created_at >= since, AuditLog.created_at <= now,
                   AuditLog.details["reason"].as_string().in_(FAILURE_REVIEW_REASONS)))


def tally(stats: RunStats, outcome: Outcome) -> None:
    """Count ``outcome`` into ``stats``."""
    stats.runs += 1
    if outcome.state == ExecutionStatus.SUCCEEDED:
        stats.succeeded += 1
    elif outcome.state == ExecutionStatus.FAILED:
        stats.failed += 1
    else:
        stats.running += 1
    if outcome.over_time_limit:
        stats.over_time_limit += 1
    if outcome.duration_ms is not None:
        stats.durations_ms.append(outcome.duration_ms)


def job_stats(session: Session, since: datetime, now: datetime, *,
              jobs: dict[str, PeriodicJob] = JOBS, time_limit_ms: int = DEFAULT_TIME_LIMIT_MS) -> list[RunStats]:
    """Per job: periodic slots claimed in the window, then per-user runs, then publishing."""
    table: dict[str, RunStats] = {name: RunStats(name, job.queue) for name, job in jobs.items()}
    for name, job in jobs.items():
        if job.per_user is not None:
            table[per_user_row(name)] = RunStats(per_user_row(name), job.queue)
    table[PUBLISHING] = RunStats(PUBLISHING, Queue.POSTING)
    for outcome in outcomes(session, since, now, jobs=jobs, time_limit_ms=time_limit_ms):
        tally(table.setdefault(outcome.name, RunStats(outcome.name, outcome.queue)), outcome)
    return list(table.values())


def total_stats(per_job: list[RunStats]) -> RunStats:
    """Every row summed: the rate the chart draws for the same window."""
    total = RunStats(ALL_WORK, "")
    for stats in per_job:
        total.add(stats)
    return total


def queue_stats(per_job: list[RunStats]) -> list[RunStats]:
    """The jobs' figures summed per queue."""
    queues: dict[str, RunStats] = {}
    for stats in per_job:
        queues.setdefault(stats.queue, RunStats(stats.queue, stats.queue)).add(stats)
    return sorted(queues.values(), key=lambda s: s.queue)


@dataclass
class PlatformPublishing:
    platform: str
    published: int = 0
    #: Posts handed to review for a failure (never those waiting for their user's approval).
    failed: int = 0
    lateness_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        """What people call the platform ("all" for the total)."""
        return display_name(self.platform)

    def as_dict(self) -> dict[str, Any]:
        p50, p99 = percentile(self.lateness_ms, 50), percentile(self.lateness_ms, 99)
        return {"platform": self.platform, "label": self.label, "published": self.published,
                "failed": self.failed,
                "late_p50_ms": None if p50 is None else round(p50, 1),
                "late_p99_ms": None if p99 is None else round(p99, 1),
                "late_max_ms": round(max(self.lateness_ms), 1) if self.lateness_ms else None}


@dataclass
class PublishingStats:
    """Posts published in the window, how late, and how many failed (went to review); per platform."""

    total: PlatformPublishing
    platforms: list[PlatformPublishing]
    #: How long each publish took, from its claim to the platform's answer.
    durations_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def published(self) -> int:
        return self.total.published

    @property
    def failed(self) -> int:
        return self.total.failed

    @property
    def lateness_ms(self) -> list[float]:
        return self.total.lateness_ms

    def as_dict(self) -> dict[str, Any]:
        return {**self.total.as_dict(), "platform": "all",
                "platforms": [p.as_dict() for p in self.platforms]}


def publishing_stats(session: Session, since: datetime, now: datetime) -> PublishingStats:
    # Every platform of the registry, in its order, with zeros where nothing went out.
    per: dict[str, PlatformPublishing] = defaultdict(lambda: PlatformPublishing(""))
    for key in KNOWN_PLATFORMS:
        per[key] = PlatformPublishing(key)
    total = PlatformPublishing("all")
    durations: list[float] = []
    for platform, scheduled, started, published in session.execute(
            select(Post.platform, Post.scheduled_at, Post.publish_started_at, Post.published_at)
            .where(Post.status == PostStatus.PUBLISHED, Post.published_at >= since,
                   Post.published_at <= now)):
        if published is None:  # excluded by the WHERE clause; says so to the type checker
            continue
        late = max(0.0, (published - scheduled).total_seconds() * 1000)
        if started is not None:
            durations.append(max(0.0, (published - started).total_seconds() * 1000))
        for bucket in (per[platform], total):
            bucket.published += 1
            bucket.lateness_ms.append(late)
    for platform, count in session.execute(
            _failures_to_publish(since, now, Post.platform, func.count()).group_by(Post.platform)):
        per[platform].failed += count
        total.failed += count
    for name, bucket in per.items():
        bucket.platform = name
    order = {key: n for n, key in enumerate(KNOWN_PLATFORMS)}
    return PublishingStats(total, sorted(per.values(), key=lambda p: (order.get(p.platform, len(order)), p.platform)),
                           durations)


def posts_by_status(session: Session) -> dict[str, int]:
    """Every post status with its count (zeros included, so a series never disappears)."""
    counts = dict(session.execute(select(Post.status, func.count()).group_by(Post.status)).all())
    return {status.value: int(counts.get(status, 0)) for status in PostStatus}


def stuck_posts(session: Session, now: datetime, *, after: timedelta = DEFAULT_STUCK_AFTER) -> list[int]:
    """Ids of posts still scheduled, queued or publishing ``after`` past their time (or retry)."""
    cutoff = now - after
    return list(session.scalars(
        select(Post.id).where(or_(
            and_(Post.status == PostStatus.SCHEDULED, Post.scheduled_at < cutoff),
            and_(Post.status == PostStatus.QUEUED, Post.scheduled_at < cutoff,
                 or_(Post.queued_at.is_(None), Post.queued_at < cutoff)),
            and_(Post.status == PostStatus.PUBLISHING,
                 func.coalesce(Post.publish_started_at, Post.scheduled_at) < cutoff),
        )).order_by(Post.id)))


@dataclass(frozen=True)
class SchedulerState:
    """When the minute job last ran: the scheduler and a posting worker are both needed for it."""

    job: str
    last_run: datetime | None
    silent_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The job whose runs prove the scheduler alive (it fires every minute).
HEARTBEAT_JOB = "dispatch_due_posts"


def scheduler_state(session: Session, now: datetime) -> SchedulerState:
    last = session.scalar(select(func.max(JobRun.claimed_at)).where(JobRun.job == HEARTBEAT_JOB))
    return SchedulerState(HEARTBEAT_JOB, last, None if last is None else (now - last).total_seconds())


def last_and_next_runs(session: Session, now: datetime, jobs: dict[str, PeriodicJob] = JOBS
                       ) -> list[dict[str, Any]]:
    """Each periodic job: its last claimed slot (status, when) and its next fire time."""
    latest = dict(session.execute(select(JobRun.job, func.max(JobRun.slot)).group_by(JobRun.job)).all())
    rows = {}
    if latest:
        for found in session.scalars(select(JobRun).where(
                or_(*[and_(JobRun.job == j, JobRun.slot == s) for j, s in latest.items()]))):
            rows[found.job] = found
    result = []
    for name, job in jobs.items():
        run = rows.get(name)
        result.append({
            "job": name, "queue": job.queue, "cron": job.cron,
            "last_slot": run.slot if run else None,
            "last_status": _run_status(run, now) if run else None,
            "last_finished_at": run.finished_at if run else None,
            "next_fire": job.next_fire(now),
        })
    return result


def _run_status(run: JobRun, now: datetime, time_limit_ms: int = DEFAULT_TIME_LIMIT_MS) -> str:
    if run.status == ExecutionStatus.RUNNING and now - run.claimed_at > timedelta(milliseconds=time_limit_ms):
        return "stuck"
    return run.status


def failed_slots(session: Session, since: datetime, now: datetime,
                 time_limit_ms: int = DEFAULT_TIME_LIMIT_MS) -> list[JobRun]:
    """Slots in the window that failed, or still "running" past the time limit (message lost)."""
    stuck_before = now - timedelta(milliseconds=time_limit_ms)
    return list(session.scalars(select(JobRun).where(
        JobRun.slot >= since,
        or_(JobRun.status == ExecutionStatus.FAILED,
            and_(JobRun.status == ExecutionStatus.RUNNING, JobRun.claimed_at < stuck_before)),
    ).order_by(JobRun.slot.desc())))
