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
from app.jobs import PeriodicJob
from app.models import AuditLog, ExecutionStatus, JobRun, Post, PostStatus, WorkflowExecution
from app.platforms import KNOWN_PLATFORMS, display_name
from app.queues import Queue
from app.workflows.jobs import JOBS

#: Per-user work each fan-out job sends, by job name, named as the job declares it.
PER_USER_ACTORS = {job.name: job.per_user_name for job in JOBS.values() if job.per_user_name is not None}
#: The posting queue's own unit of work, shown beside the jobs.
PUBLISH = "publish_post"
#: A post still scheduled, queued or publishing this long after its time is stuck: the
#: dispatcher runs every minute and the sweeper every 15, so either has had its chance.
DEFAULT_STUCK_AFTER = timedelta(minutes=20)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between ranks; None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
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
    def success_rate(self) -> float | None:
        """Percent of finished runs that succeeded; None when nothing finished."""
        finished = self.succeeded + self.failed
        return round(100 * self.succeeded / finished, 2) if finished else None

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


def _count(stats: RunStats, status: str, duration_ms: float | None, started: datetime, now: datetime,
           limit_ms: int) -> None:
    stats.runs += 1
    if status == ExecutionStatus.SUCCEEDED:
        stats.succeeded += 1
    elif status == ExecutionStatus.FAILED:
        stats.failed += 1
    elif status == ExecutionStatus.RUNNING and (now - started).total_seconds() * 1000 > limit_ms:
        # Past its time limit and still "running": its message is gone, the run failed.
        stats.failed += 1
        stats.over_time_limit += 1
        return
    else:
        stats.running += 1
    if duration_ms is not None:
        stats.durations_ms.append(duration_ms)
        if duration_ms > limit_ms:
            stats.over_time_limit += 1


def job_stats(session: Session, since: datetime, now: datetime, *,
              jobs: dict[str, PeriodicJob] = JOBS, time_limit_ms: int = DEFAULT_TIME_LIMIT_MS) -> list[RunStats]:
    """Per job: periodic slots claimed in the window, then per-user runs, then publishing."""
    table: dict[str, RunStats] = {name: RunStats(name, job.queue) for name, job in jobs.items()}
    for job, per_user in PER_USER_ACTORS.items():
        table[per_user] = RunStats(per_user, jobs[job].queue)
    table[PUBLISH] = RunStats(PUBLISH, Queue.POSTING)

    for name, status, claimed, finished in session.execute(
            select(JobRun.job, JobRun.status, JobRun.claimed_at, JobRun.finished_at)
            .where(JobRun.claimed_at >= since, JobRun.claimed_at <= now)):
        stats = table.setdefault(name, RunStats(name, "?"))
        duration = (finished - claimed).total_seconds() * 1000 if finished else None
        _count(stats, status, duration, claimed, now, time_limit_ms)

    for workflow, status, created, started, duration in session.execute(
            select(WorkflowExecution.workflow, WorkflowExecution.status, WorkflowExecution.created_at,
                   WorkflowExecution.started_at, WorkflowExecution.duration_ms)
            .where(WorkflowExecution.created_at >= since, WorkflowExecution.created_at <= now)):
        name = PER_USER_ACTORS.get(workflow, workflow)
        stats = table.setdefault(name, RunStats(name, "?"))
        if status == ExecutionStatus.PENDING:
            stats.runs += 1
            stats.running += 1
            continue
        _count(stats, status, duration, started or created, now, time_limit_ms)

    publishing = publishing_stats(session, since, now)
    table[PUBLISH].runs = table[PUBLISH].succeeded = publishing.published
    table[PUBLISH].failed = publishing.reviewed
    table[PUBLISH].runs += publishing.reviewed
    table[PUBLISH].durations_ms = list(publishing.durations_ms)
    return list(table.values())


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
    reviewed: int = 0
    lateness_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        """What people call the platform ("all" for the total)."""
        return display_name(self.platform)

    def as_dict(self) -> dict[str, Any]:
        p50, p99 = percentile(self.lateness_ms, 50), percentile(self.lateness_ms, 99)
        return {"platform": self.platform, "label": self.label, "published": self.published,
                "reviewed": self.reviewed,
                "late_p50_ms": None if p50 is None else round(p50, 1),
                "late_p99_ms": None if p99 is None else round(p99, 1),
                "late_max_ms": round(max(self.lateness_ms), 1) if self.lateness_ms else None}


@dataclass
class PublishingStats:
    """Posts published in the window, how late, and how many went to review; per platform."""

    total: PlatformPublishing
    platforms: list[PlatformPublishing]
    #: How long each publish took, from its claim to the platform's answer.
    durations_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def published(self) -> int:
        return self.total.published

    @property
    def reviewed(self) -> int:
        return self.total.reviewed

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
            select(Post.platform, func.count())
            .select_from(AuditLog).join(Post, Post.id == AuditLog.post_id)
            .where(AuditLog.action == "post.reviewed", AuditLog.created_at >= since,
                   AuditLog.created_at <= now)
            .group_by(Post.platform)):
        per[platform].reviewed += count
        total.reviewed += count
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
