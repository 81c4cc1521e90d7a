"""The periodic jobs: one actor per job of the catalogue, firing on its UTC cron, once per slot."""

from __future__ import annotations

from collections.abc import Mapping

import dramatiq
from dramatiq import Broker

from actors.liveness import probe_for
from actors.messages import (
    MANUAL_ACTOR,
    MANUAL_QUEUE,
    current_message_id,
    current_scheduled_at,
    send,
)
from app.errors import InvalidValue
from app.jobs.spec import PeriodicJob
from app.runtime import get_runtime
from app.workflows.ticks import finish_tick, resolve_slot, run_tick

#: Redeliveries of a tick that failed (each resumes its own claim).
TICK_MAX_RETRIES = 3


def run_job(job: str, slot: str | None, trigger: str) -> None:
    """Claim the job's slot, run its steps, send what they ask; a duplicate does nothing."""
    runtime = get_runtime()
    slot_at = resolve_slot(job, slot or current_scheduled_at(), runtime.now())
    probe = probe_for(dramatiq.get_broker(), runtime.settings.worker_silence_seconds)
    result = run_tick(runtime, job, slot_at, trigger=trigger, message_id=current_message_id(),
                      messages=probe)
    if result.claimed:
        sent = send(result.intents, runtime.now())
        finish_tick(runtime, job, slot_at, sent=sent)


def register(broker: Broker, jobs: Mapping[str, PeriodicJob]) -> None:
    """A periodic actor per job (named after it, on its queue) and the manual trigger."""
    for job in jobs.values():
        def tick(slot: str | None = None, trigger: str = "periodic", name: str = job.name) -> None:
            run_job(name, slot, trigger)

        tick.__name__ = job.name
        tick.__doc__ = job.description
        dramatiq.actor(broker=broker, actor_name=job.name, queue_name=job.queue,
                       periodic=job.spec, max_retries=TICK_MAX_RETRIES)(tick)

    known = tuple(jobs)

    def run_job_manually(job: str, slot: str | None = None) -> None:
        """A manual or backward-compatible trigger (``autopilot jobs run``): still once per slot."""
        if job not in known:
            raise InvalidValue(f"unknown job {job!r}; known: {', '.join(known)}")
        run_job(job, slot, "manual")

    dramatiq.actor(broker=broker, actor_name=MANUAL_ACTOR, queue_name=MANUAL_QUEUE,
                   max_retries=TICK_MAX_RETRIES)(run_job_manually)
