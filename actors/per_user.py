"""Per-user fan-out targets: one message per user and slot, each idempotent."""

from __future__ import annotations

from collections.abc import Mapping

import dramatiq
from dramatiq import Broker

from actors.messages import PER_USER_ACTORS, current_message_id
from app.errors import RetryLater
from app.jobs.spec import PeriodicJob
from app.runtime import get_runtime

#: Retries of a per-user run that hit a temporary failure, and the first backoff in ms.
PER_USER_MAX_RETRIES, PER_USER_MIN_BACKOFF_MS = 5, 30_000


def register(broker: Broker, jobs: Mapping[str, PeriodicJob]) -> None:
    """One actor per job with a per-user step, on the job's queue."""
    for job_name, actor_name in PER_USER_ACTORS.items():
        job = jobs[job_name]
        assert job.per_user is not None, f"{job_name} has no per-user step"
        step = job.per_user

        def run(execution_id: int, step=step) -> None:  # type: ignore[no-untyped-def]
            try:
                step(get_runtime(), execution_id, current_message_id())
            except RetryLater as exc:
                # Retried with the actor's backoff, and not logged as a failure.
                raise dramatiq.Retry(str(exc)) from exc

        run.__name__ = actor_name
        run.__doc__ = f"The per-user step of {job_name}."
        dramatiq.actor(broker=broker, actor_name=actor_name, queue_name=job.queue,
                       max_retries=PER_USER_MAX_RETRIES, min_backoff=PER_USER_MIN_BACKOFF_MS)(run)
