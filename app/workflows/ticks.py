"""What each periodic job does for one slot, as a plain function over the runtime.

A tick claims its (job, slot), does its database work, and returns the messages the actor
layer must send (:class:`Outgoing`): workflows never import Dramatiq. The actor sends them,
then calls :func:`finish_tick`. If the worker dies in between, the same message redelivered
resumes the claim and sends again; every receiver is idempotent, so that is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.jobs import (
    JOBS,
    claim_slot,
    finish_slot,
    jobs_for,
    missed_slots,
    prune_job_runs,
)
from app.models import JobRun
from app.notifications import send_pending_emails
from app.runtime import Runtime
from app.workflows import executions
from app.workflows.accounts import warn_expiring_accounts
from app.workflows.generation import fan_out_generation, opted_in_user_ids
from app.workflows.metrics import users_with_metrics_due
from app.workflows.publishing import Dispatch, dispatch_due_posts, sweep_stuck_posts

#: The per-user actor that runs each fanned-out workflow.
PER_USER_ACTOR = {
    "daily_generation": "generate_for_user",
    "metrics_collection": "collect_metrics_for_user",
    "weekly_report": "weekly_report_for_user",
}


@dataclass(frozen=True)
class Outgoing:
    """A message the actor layer must send: actor name, arguments, and when it should run."""

    actor: str
    args: tuple[object, ...]
    eta: datetime | None = None


@dataclass
class TickResult:
    claimed: bool
    messages: list[Outgoing] = field(default_factory=list)


def resolve_slot(job: str, requested: str | None, now: datetime) -> datetime:
    """The slot a message is for: the one it names, else the latest fire time at or before now."""
    if requested:
        parsed = datetime.fromisoformat(requested.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError(f"slot {requested!r} needs a UTC offset")
        return parsed.astimezone(UTC).replace(second=0, microsecond=0)
    latest = JOBS[job].latest_fire(now)
    assert latest is not None, f"{job} never fired in the lookback"
    return latest


def run_tick(runtime: Runtime, job: str, slot: datetime, *, trigger: str, claim_id: str | None) -> TickResult:
    """Claim (job, slot) and do the job's database work; nothing happens if the claim fails."""
    now = runtime.now()
    with runtime.session_factory() as session, session.begin():
        if claim_slot(session, job, slot, trigger=trigger, claim_id=claim_id, now=now) is None:
            return TickResult(claimed=False)
        if job == "daily_generation":
            ids = fan_out_generation(session, slot, now=now)
        elif job == "weekly_report":
            ids = executions.fan_out(session, job, slot, opted_in_user_ids(session), now=now)
        elif job == "metrics_collection":
            ids = executions.fan_out(session, job, slot, users_with_metrics_due(session, now), now=now)
            # Daily upkeep rides on the 02:00 job: tokens that will lapse within a week.
            warn_expiring_accounts(session, now)
        else:
            ids = []
        if job == "sweep_stuck_posts":
            prune_job_runs(session, now)
    if job in PER_USER_ACTOR:
        return TickResult(True, [Outgoing(PER_USER_ACTOR[job], (eid,)) for eid in ids])
    if job == "dispatch_due_posts":
        return TickResult(True, _dispatch(runtime, now))
    if job == "sweep_stuck_posts":
        return TickResult(True, _sweep(runtime, now))
    raise ValueError(f"unknown job {job!r}")


def finish_tick(runtime: Runtime, job: str, slot: datetime, *, sent: int, error: str | None = None) -> None:
    with runtime.session_factory() as session, session.begin():
        run = session.scalar(select(JobRun).where(JobRun.job == job, JobRun.slot == slot))
        if run is not None:
            finish_slot(run, now=runtime.now(), fanned_out=sent, error=error)


def _publish_messages(dispatches: list[Dispatch]) -> list[Outgoing]:
    return [Outgoing("publish_post", (d.post_id, d.claim_token, d.due_at.isoformat()), eta=d.due_at)
            for d in dispatches]


def _catch_up(runtime: Runtime, now: datetime) -> list[Outgoing]:
    """Missed daily and weekly slots, re-sent once to their own job (the claim keeps it once)."""
    with runtime.session_factory() as session:
        missed = missed_slots(session, now, jobs_for(runtime.settings))
    return [Outgoing(job, (slot.isoformat(), "catch_up")) for job, slot in missed]


def _dispatch(runtime: Runtime, now: datetime) -> list[Outgoing]:
    return _publish_messages(dispatch_due_posts(runtime, now)) + _catch_up(runtime, now)


#: With every in-flight message known lost, "overdue by" thresholds shrink to nothing.
ALL_LOST = timedelta(days=-366)


def _sweep(runtime: Runtime, now: datetime, *, messages_lost: bool = False) -> list[Outgoing]:
    if messages_lost:
        dispatches = sweep_stuck_posts(runtime, now, queued_grace=ALL_LOST)
    else:
        dispatches = sweep_stuck_posts(runtime, now)
    messages = _publish_messages(dispatches) + _catch_up(runtime, now)
    if runtime.settings.smtp_host:
        send_pending_emails(runtime.session_factory, runtime.settings, now)
    with runtime.session_factory() as session:
        grace = {"pending_grace": timedelta(0)} if messages_lost else {}
        for execution_id, workflow in executions.stale_executions(session, now, **grace):
            if workflow in PER_USER_ACTOR:
                messages.append(Outgoing(PER_USER_ACTOR[workflow], (execution_id,)))
    return messages


def recovery_messages(runtime: Runtime, now: datetime, *, messages_lost: bool) -> list[Outgoing]:
    """At start-up: the sweep's work without its claim (lost posts, stale executions, missed slots).

    ``messages_lost``: the broker was in-process, so every queued post and pending execution
    lost its message at shutdown and is re-sent now rather than after the usual grace.
    """
    return _sweep(runtime, now, messages_lost=messages_lost)

