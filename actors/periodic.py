"""The periodic jobs. Each fires on its UTC cron and runs its slot once (see app.jobs)."""

from __future__ import annotations

import dramatiq
from periodiq import cron

from actors.messages import current_message_id, current_scheduled_at, send_all
from app.jobs import JOBS
from app.runtime import get_runtime
from app.workflows.ticks import finish_tick, resolve_slot, run_tick


def run_job(job: str, slot: str | None, trigger: str) -> None:
    """Claim the job's slot, do its work, send what it asks; a duplicate does nothing."""
    runtime = get_runtime()
    slot_at = resolve_slot(job, slot or current_scheduled_at(), runtime.now())
    result = run_tick(runtime, job, slot_at, trigger=trigger, claim_id=current_message_id())
    if result.claimed:
        sent = send_all(result.messages, runtime.now())
        finish_tick(runtime, job, slot_at, sent=sent)


def _periodic(job: str) -> dramatiq.Actor[..., None]:
    spec = JOBS[job]

    def tick(slot: str | None = None, trigger: str = "periodic") -> None:
        run_job(job, slot, trigger)

    tick.__name__ = job
    tick.__doc__ = spec.description
    return dramatiq.actor(actor_name=job, queue_name=spec.queue, periodic=cron(spec.cron), max_retries=3)(tick)


daily_generation = _periodic("daily_generation")
metrics_collection = _periodic("metrics_collection")
weekly_report = _periodic("weekly_report")
dispatch_due_posts = _periodic("dispatch_due_posts")
sweep_stuck_posts = _periodic("sweep_stuck_posts")


@dramatiq.actor(queue_name="legacy", max_retries=3)
def run_job_manually(job: str, slot: str | None = None) -> None:
    """A manual or backward-compatible trigger (``autopilot jobs run``): still once per slot."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; known: {', '.join(JOBS)}")
    run_job(job, slot, "manual")
