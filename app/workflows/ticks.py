"""Running one slot of a periodic job: claim it, run the job's steps, collect their intents.

A tick claims its (job, slot) and runs each step in order; each step does its database work
in its own short sessions and returns intents for the actor layer, which sends them and then
calls :func:`finish_tick`. If the worker dies in between, the same message redelivered resumes
the claim and runs the steps again; every step and every receiver is idempotent. A claim and
its send are not atomic: the resumed tick knows when the interrupted attempt ran
(``Tick.resumed_from``), and the minute job's recovery step re-sends what that attempt claimed
and the broker does not have; a tick never redelivered is covered by the next minute's
recovery, which re-sends any queued post whose message is not alive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from app.errors import InvalidValue
from app.intents import Intent, MessageProbe
from app.jobs.claims import claim_slot, finish_slot
from app.jobs.spec import Tick
from app.jobs.upkeep import CATCH_UP_MISSED_SLOTS
from app.models import JobRun
from app.runtime import Runtime
from app.workflows.jobs import JOBS, catalogue
from app.workflows.sweep import SWEEP_STUCK_POSTS

__all__ = ["TickResult", "finish_tick", "recovery_intents", "resolve_slot", "run_tick"]


@dataclass
class TickResult:
    claimed: bool
    intents: list[Intent] = field(default_factory=list)


def resolve_slot(job: str, requested: str | None, now: datetime) -> datetime:
    """The slot a message is for: the one it names, else the latest fire at or before now."""
    if requested:
        parsed = datetime.fromisoformat(requested.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise InvalidValue(f"slot {requested!r} needs a UTC offset")
        return parsed.astimezone(UTC).replace(second=0, microsecond=0)
    latest = JOBS[job].latest_fire(now)
    assert latest is not None, f"{job} never fired in the lookback"
    return latest


def run_tick(runtime: Runtime, job: str, slot: datetime, *, trigger: str, message_id: str | None,
             messages: MessageProbe | None = None) -> TickResult:
    """Claim (job, slot) and run the job's steps; nothing happens if the claim fails.

    ``messages``: the broker's view of which messages are alive, for the recovery steps.
    """
    jobs = catalogue(runtime.settings)
    if job not in jobs:
        raise InvalidValue(f"unknown job {job!r}; known: {', '.join(jobs)}")
    now = runtime.now()
    with runtime.session_factory() as session, session.begin():
        run = claim_slot(session, job, slot, trigger=trigger, message_id=message_id, now=now)
        if run is None:
            return TickResult(claimed=False)
        resumed_from = run.claimed_at if run.claimed_at != now else None
    tick = Tick(runtime, jobs[job], slot, now, jobs, messages=messages, resumed_from=resumed_from)
    return TickResult(True, [intent for step in jobs[job].steps for intent in step.run(tick)])


def finish_tick(runtime: Runtime, job: str, slot: datetime, *, sent: int, error: str | None = None) -> None:
    """Mark the claimed run finished once its intents were handed to the broker."""
    with runtime.session_factory() as session, session.begin():
        run = session.scalar(select(JobRun).where(JobRun.job == job, JobRun.slot == slot))
        if run is not None:
            finish_slot(run, now=runtime.now(), fanned_out=sent, error=error)


def recovery_intents(runtime: Runtime, now: datetime, *, messages_lost: bool,
                     messages: MessageProbe | None = None) -> list[Intent]:
    """At start-up: the sweep's steps and the catch-up, without a claim.

    ``messages_lost``: the broker was in-process, so every queued post and pending execution
    lost its message at shutdown and is re-sent now rather than after the usual grace.
    """
    jobs = catalogue(runtime.settings)
    sweep = jobs[SWEEP_STUCK_POSTS.name]
    tick = Tick(runtime, sweep, now, now, jobs, messages_lost=messages_lost, messages=messages)
    return [intent for step in (*sweep.steps, CATCH_UP_MISSED_SLOTS) for intent in step.run(tick)]
