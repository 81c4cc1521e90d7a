"""One snapshot of the system's health, and the thresholds ``autopilot check`` alerts on.

:func:`take_snapshot` reads Redis (queues, workers) and the database (scheduler, runs, posts)
once; :func:`problems` is pure over the snapshot, so each threshold is tested on its own and the
CLI, the admin page and the Prometheus alert rules say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy.orm import Session

from app.config import Settings
from app.ops.queues import QueueDepth, queue_depths
from app.ops.stats import (
    RunStats,
    SchedulerState,
    job_stats,
    queue_stats,
    scheduler_state,
    stuck_posts,
)
from app.ops.workers import WorkerCensus, census
from app.queues import QUEUES

#: The window of the success-rate threshold.
SUCCESS_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Thresholds:
    """Where ``autopilot check`` draws the line (defaults from Settings, overridable per call)."""

    queue_depth_max: int
    min_success_rate: float
    scheduler_silence_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.ops_queue_depth_max, settings.ops_min_success_rate,
                   settings.ops_scheduler_silence_seconds)


@dataclass(frozen=True)
class Problem:
    """One crossed threshold: a stable code for machines, a sentence for people."""

    code: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code} [{self.subject}]: {self.detail}"

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "subject": self.subject, "detail": self.detail}


@dataclass
class Snapshot:
    now: datetime
    queues: list[QueueDepth]
    workers: WorkerCensus
    scheduler: SchedulerState
    jobs: list[RunStats]
    stuck_post_ids: list[int]
    queue_runs: list[RunStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.queue_runs:
            self.queue_runs = queue_stats(self.jobs)


def take_snapshot(client: redis.Redis, session: Session, settings: Settings, now: datetime, *,
                  queues: tuple[str, ...] = QUEUES) -> Snapshot:
    return Snapshot(
        now=now,
        queues=queue_depths(client, queues),
        workers=census(client, silence_seconds=settings.worker_silence_seconds),
        scheduler=scheduler_state(session, now),
        jobs=job_stats(session, now - SUCCESS_WINDOW, now),
        stuck_post_ids=stuck_posts(session, now),
    )


def problems(snapshot: Snapshot, thresholds: Thresholds) -> list[Problem]:
    """Every crossed threshold, in a stable order."""
    found: list[Problem] = []
    for depth in snapshot.queues:
        consumers = snapshot.workers.consumers_of(depth.queue)
        if depth.waiting + depth.delayed + depth.in_flight > 0 and not consumers:
            found.append(Problem("no_worker", depth.queue,
                                 f"{depth.waiting} waiting, {depth.delayed} delayed and no live worker "
                                 "consumes this queue"))
        if depth.depth >= thresholds.queue_depth_max:
            found.append(Problem("queue_depth", depth.queue,
                                 f"depth {depth.depth} >= {thresholds.queue_depth_max}"))
        if depth.dead:
            found.append(Problem("dead_letters", depth.queue,
                                 f"{depth.dead} dead letter(s): autopilot queues dead {depth.queue}"))
    silent = snapshot.scheduler.silent_seconds
    if silent is None or silent > thresholds.scheduler_silence_seconds:
        when = "never ran" if silent is None else f"last ran {int(silent)} s ago"
        found.append(Problem("scheduler_silent", snapshot.scheduler.job,
                             f"{when} (limit {thresholds.scheduler_silence_seconds} s): is `periodiq actors.entrypoint` "
                             "running, and a worker on its queue?"))
    for kind, rows in (("job", snapshot.jobs), ("queue", snapshot.queue_runs)):
        for stats in rows:
            rate = stats.success_rate
            if rate is not None and rate < thresholds.min_success_rate:
                found.append(Problem("success_rate", f"{kind}:{stats.name}",
                                     f"{rate:.1f}% of {stats.succeeded + stats.failed} finished runs "
                                     f"succeeded in 24 h (< {thresholds.min_success_rate:g}%)"))
    if snapshot.stuck_post_ids:
        ids = ", ".join(str(i) for i in snapshot.stuck_post_ids[:10])
        more = "..." if len(snapshot.stuck_post_ids) > 10 else ""
        found.append(Problem("posts_stuck", "posts",
                             f"{len(snapshot.stuck_post_ids)} post(s) overdue and not published: {ids}{more}"))
    return found


def snapshot_dict(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as JSON-ready data (the CLI's --json, the admin's live endpoint)."""
    return {
        "now": snapshot.now,
        "queues": [q.as_dict() for q in snapshot.queues],
        "workers": [w.as_dict() for w in snapshot.workers.workers],
        "live_workers": len(snapshot.workers.live),
        "queue_workers": {q.queue: len(snapshot.workers.consumers_of(q.queue)) for q in snapshot.queues},
        "other_live_processes": snapshot.workers.other_live_processes,
        "scheduler": snapshot.scheduler.as_dict(),
        "jobs": [j.as_dict() for j in snapshot.jobs],
        "queue_runs": [q.as_dict() for q in snapshot.queue_runs],
        "stuck_posts": snapshot.stuck_post_ids,
    }
