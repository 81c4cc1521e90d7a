"""``autopilot schedule`` (the periodic jobs and their next fire times) and ``autopilot jobs run``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
import dramatiq
from rich.table import Table
from sqlalchemy import select

import actors
from actors.messages import MANUAL_QUEUE, send_manual_run
from app.broker import drain
from app.cli.common import console, emit, json_option, session, settings
from app.clock import utcnow
from app.errors import FieldError, ValidationError
from app.models import JobRun
from app.workflows.jobs import JOBS, catalogue
from app.workflows.ticks import resolve_slot

#: How many upcoming fire times ``autopilot schedule`` lists per job.
UPCOMING = 3


def describe_schedule(now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "name": job.name,
            "cron": job.cron,
            "timezone": "UTC",
            "queue": job.queue,
            "description": job.description,
            "catch_up_seconds": int(job.catch_up.total_seconds()) if job.catch_up is not None else None,
            "next_fires": job.next_fires(now, UPCOMING),
            "steps": [{"name": step.name, "description": step.description} for step in job.steps],
        }
        for job in catalogue(settings()).values()
    ]


def _window(seconds: int | None) -> str:
    if seconds is None:
        return "none"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h" if not rest else f"{seconds // 60} min"


@click.command()
@json_option
def schedule(as_json: bool) -> None:
    """The periodic jobs: cron (UTC), queue, catch-up window, next three fire times, and each step."""
    data = describe_schedule(utcnow())

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table("job", "cron (UTC)", "queue", "catch-up", "next fire times (UTC)", "description",
                      title="Periodic jobs (every slot runs once)")
        table.columns[0].no_wrap = True
        table.columns[4].no_wrap = True
        for row in rows:
            steps = "".join(f"\n- {step['name']}: {step['description']}" for step in row["steps"])
            table.add_row(row["name"], row["cron"], row["queue"], _window(row["catch_up_seconds"]),
                          "\n".join(t.strftime("%Y-%m-%d %H:%M") for t in row["next_fires"]),
                          row["description"] + steps)
        console().print(table)

    emit(data, as_json, render)


@click.group()
def jobs() -> None:
    """Periodic jobs triggered by hand."""


def _job_run(job: str, slot: datetime) -> dict[str, Any] | None:
    with session() as s:
        run = s.scalar(select(JobRun).where(JobRun.job == job, JobRun.slot == slot))
        if run is None:
            return None
        return {"trigger": run.trigger, "status": run.status, "fanned_out": run.fanned_out,
                "claimed_at": run.claimed_at, "finished_at": run.finished_at, "error": run.error}


def _render_already_ran(d: dict[str, Any]) -> None:
    run = d["run"]
    when = f"{d['slot']:%Y-%m-%d %H:%M} UTC"
    if run is None:
        click.echo(f"{d['job']} did not run for slot {when} (nothing done)")
        return
    line = (f"{d['job']} already ran for this slot ({when}): claimed {run['claimed_at']:%Y-%m-%d %H:%M:%S} UTC "
            f"by its {run['trigger']} trigger, {run['status']}")
    if run["finished_at"] is not None:
        line += f", finished {run['finished_at']:%Y-%m-%d %H:%M:%S} UTC"
    click.echo(line + " (nothing done; each slot runs once)")
    if d["job"] in RECOVERY_JOBS:
        click.echo("to recover stuck posts now, whatever the slot: autopilot posts recover")


#: Jobs whose by-hand trigger usually means "recover stuck posts now".
RECOVERY_JOBS = ("sweep_stuck_posts", "dispatch_due_posts")

#: How long an in-process worker thread waits on an empty queue before checking for stop, in ms.
IN_PROCESS_POLL_MS = 100


def _run_in_process(broker: Any, job: str, slot: datetime) -> str:
    """Send the trigger to the in-process stub broker and work every queue until all are empty."""
    # A short consumer timeout: stopping the worker waits for each thread's poll to return.
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=IN_PROCESS_POLL_MS)
    worker.start()
    try:
        # No retries for the trigger itself: a failure is reported here, not minutes later.
        message = send_manual_run(broker, job, slot, max_retries=0)
        drain(broker)
    finally:
        worker.stop()
    return str(message.message_id)


@jobs.command(name="run")
@click.argument("job")
@click.option("--slot", help="The slot (ISO 8601 with offset); default: the job's latest fire time.")
@json_option
def run_job(job: str, slot: str | None, as_json: bool) -> None:
    """Trigger a periodic job by hand, still once per slot (on the legacy queue)."""
    if job not in JOBS:
        raise ValidationError([FieldError("job", job, f"unknown job; known: {', '.join(JOBS)}")])
    try:
        slot_at = resolve_slot(job, slot, utcnow())
    except ValueError as exc:
        raise ValidationError([FieldError("slot", slot or "", f"not an ISO 8601 instant with offset ({exc})")]) \
            from None

    data: dict[str, Any] = {"job": job, "slot": slot_at}
    before = _job_run(job, slot_at)
    if before is not None:
        # Claimed already (by the periodic tick, another trigger or a catch-up): a trigger for
        # this slot would do nothing, so say so rather than report it queued or run.
        data.update(mode="not-run", ran=False, run=before)
        emit(data, as_json, _render_already_ran)
        return

    broker = actors.setup(settings())
    if settings().redis_url:
        message = send_manual_run(broker, job, slot_at)
        data.update(mode="enqueued", message_id=message.message_id)
        emit(data, as_json, lambda d: click.echo(
            f"queued {d['job']} for slot {d['slot']:%Y-%m-%d %H:%M} UTC on the {MANUAL_QUEUE} queue "
            f"(message {d['message_id']}); a worker bound to '{MANUAL_QUEUE}' runs it once per slot"))
        return

    message_id = _run_in_process(broker, job, slot_at)
    after = _job_run(job, slot_at)
    ran = after is not None and after["trigger"] == "manual"
    data.update(mode="in-process", message_id=message_id, ran=ran, run=after)

    def render(d: dict[str, Any]) -> None:
        if not d["ran"]:
            _render_already_ran(d)
            return
        when = f"{d['slot']:%Y-%m-%d %H:%M} UTC"
        run = d["run"]
        line = f"{d['job']} ran for slot {when}: {run['status']}, {run['fanned_out']} message(s) fanned out"
        click.echo(line + (f"; error: {run['error']}" if run["error"] else ""))

    emit(data, as_json, render)
