"""What an operator may do from the Operations page or the CLI, each leaving an audit row.

* re-run a failed slot: the failed (or stuck) claim is deleted and a manual run is sent to the
  ``legacy`` queue, which claims the slot afresh, so it still runs once;
* requeue or purge dead letters (:mod:`app.ops.deadletters`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import redis
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import audit
from app.errors import FieldError, NotFound, ValidationError
from app.models import ExecutionStatus, JobRun
from app.ops import deadletters, require_queue
from app.ops.stats import failed_slots
from app.workflows.jobs import JOBS

#: Sends a manual run of (job, slot) and returns its message id; the actor layer provides it
#: (actors.messages.send_manual_run), so no actor name is written here.
SendManualRun = Callable[[str, datetime], str]


def rerun_slot(session_factory: Callable[[], Session], send_manual_run: SendManualRun, job: str,
               slot: datetime, *, actor: str, now: datetime) -> str:
    """Release a failed slot's claim and send a manual run of it; the message id sent.

    Refused (ValidationError) unless the slot failed or is stuck past its time limit: a slot
    that succeeded or is running must not run twice.
    """
    if job not in JOBS:
        raise ValidationError([FieldError("job", job, f"unknown job; known: {', '.join(JOBS)}")])
    with session_factory() as session, session.begin():
        failed = {run.id: run for run in failed_slots(session, slot, now) if run.job == job and run.slot == slot}
        run = session.scalar(select(JobRun).where(JobRun.job == job, JobRun.slot == slot))
        if run is None:
            raise NotFound(f"no run of {job} for slot {slot.isoformat()}")
        if run.id not in failed:
            raise ValidationError([FieldError("slot", slot.isoformat(),
                                              f"{job} is {run.status} for this slot: only a failed or stuck "
                                              "slot can be run again")])
        gone = session.execute(delete(JobRun).where(JobRun.id == run.id, JobRun.status == run.status)
                               .execution_options(synchronize_session=False))
        if gone.rowcount != 1:  # type: ignore[attr-defined]
            raise ValidationError([FieldError("slot", slot.isoformat(), "changed meanwhile: reload and retry")])
        audit.record(session, "job.slot_rerun", actor=actor,
                     details={"job": job, "slot": slot.isoformat(), "previous_status": run.status,
                              "stuck": run.status == ExecutionStatus.RUNNING, "error": run.error})
    return send_manual_run(job, slot)


def act_on_dead_letters(session_factory: Callable[[], Session], client: redis.Redis, queue: str, verb: str,
                        *, actor: str, ids: list[str] | None = None) -> list[str]:
    """Requeue or purge a queue's dead letters (all, or ``ids``), with an audit row."""
    require_queue(queue)
    if verb not in ("requeue", "purge"):
        raise ValidationError([FieldError("action", verb, "expected requeue or purge")])
    done = (deadletters.requeue if verb == "requeue" else deadletters.purge)(client, queue, ids)
    with session_factory() as session, session.begin():
        audit.record(session, f"dead_letters.{verb}d", actor=actor,
                     details={"queue": queue, "count": len(done), "ids": done})
    return done
