"""``autopilot queues``, ``workers``, ``stats`` and ``check``: the operator's view of the engine.

Each reads Redis (Dramatiq's key layout, see :mod:`app.redis_layout`) and the database once and
prints a table, or JSON with ``--json``. ``check`` exits 1 naming each crossed threshold, for
cron and alerting; 0 when healthy.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click
from rich.table import Table
from sqlalchemy.orm import Session

from actors.messages import ACTOR_PARAMETERS
from app.cli.common import EXIT_BAD_INPUT, console, emit, json_option, session, settings
from app.clock import utcnow
from app.errors import FieldError, ValidationError
from app.ops import broker_client, require_queue
from app.ops.actions import act_on_dead_letters
from app.ops.check import Thresholds, problems, snapshot_dict, take_snapshot
from app.ops.deadletters import dead_letters
from app.ops.queues import queue_depths
from app.ops.stats import job_stats, publishing_stats, queue_stats, scheduler_state
from app.ops.workers import census
from app.queues import QUEUES

#: Exit status of ``autopilot check`` when a threshold is crossed.
EXIT_UNHEALTHY = 1
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(field: str, value: str) -> timedelta:
    """``90m``, ``24h``, ``7d``, ``2w`` -> a timedelta; anything else is refused, naming the field."""
    match = _DURATION.match(value.strip())
    if not match or int(match.group(1)) == 0:
        raise ValidationError([FieldError(field, value, "expected a positive duration like 90m, 24h, 7d or 2w")])
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for figures: on DATABASE_REPLICA_URL when set (they may lag by the replication delay)."""
    replica = settings().database_replica_url
    if not replica:
        with session() as s:
            yield s
        return
    from app.db import session_scope

    with session_scope(replica) as s:
        yield s


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


# -- queues ---------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """Messages per named queue: waiting, in flight, delayed (held by workers) and dead."""
    if ctx.invoked_subcommand is not None:
        return
    depths = queue_depths(broker_client(settings()), QUEUES)

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table("queue", "waiting", "in flight", "delayed", "dead", title="Queues (Redis)")
        for r in rows:
            table.add_row(r["queue"], str(r["waiting"]), str(r["in_flight"]), str(r["delayed"]), str(r["dead"]))
        console().print(table)

    emit([d.as_dict() for d in depths], as_json, render)


@queues.command("dead")
@click.argument("queue")
@click.option("--requeue", "do_requeue", is_flag=True, help="Put every dead letter back on QUEUE.")
@click.option("--purge", "do_purge", is_flag=True, help="Delete every dead letter of QUEUE.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000),
              help="List at most this many (most recent first).")
@json_option
def dead(queue: str, do_requeue: bool, do_purge: bool, yes: bool, limit: int, as_json: bool) -> None:
    """List QUEUE's dead letters (actor, arguments with secrets masked, failure); requeue or purge them."""
    if do_requeue and do_purge:
        raise ValidationError([FieldError("--requeue/--purge", "both", "choose one")])
    try:
        require_queue(queue)
    except Exception as exc:  # UnknownQueue: bad input, exit 2 like every refused value
        raise ValidationError([FieldError("queue", queue, str(exc))]) from None
    client = broker_client(settings())
    letters = dead_letters(client, queue, parameters=ACTOR_PARAMETERS, limit=limit)
    if not (do_requeue or do_purge):
        def render(rows: list[dict[str, Any]]) -> None:
            if not rows:
                click.echo(f"no dead letters on {queue}")
                return
            table = Table("id", "actor", "args", "retries", "died (UTC)", "failure", title=f"Dead letters: {queue}")
            for r in rows:
                table.add_row(r["id"][:8], r["actor"], _short_args(r), str(r["retries"]),
                              f"{r['died_at']:%Y-%m-%d %H:%M:%S}", r["failure"])
            console().print(table)

        emit([letter.as_dict() for letter in letters], as_json, render)
        return
    verb = "requeue" if do_requeue else "purge"
    count = queue_depths(client, (queue,))[0].dead
    if count == 0:
        emit({"queue": queue, "action": verb, "ids": []}, as_json,
             lambda d: click.echo(f"no dead letters on {queue}: nothing to {verb}"))
        return
    if not yes:
        click.confirm(f"{verb} {count} dead letter(s) of {queue}?", abort=True, err=True)
    from app.db import get_engine, make_session_factory

    ids = act_on_dead_letters(make_session_factory(get_engine(settings().database_url)), client, queue, verb,
                              actor="cli")
    emit({"queue": queue, "action": verb, "ids": ids}, as_json,
         lambda d: click.echo(f"{verb}d {len(d['ids'])} dead letter(s) of {queue}"))


def _short_args(row: dict[str, Any]) -> str:
    parts = [repr(a) for a in row["args"]] + [f"{k}={v!r}" for k, v in row["kwargs"].items()]
    return ", ".join(parts)


# -- workers --------------------------------------------------------------------------------


@click.command()
@json_option
def workers(as_json: bool) -> None:
    """Live worker processes (Dramatiq heartbeats), the queues each consumes, and the scheduler."""
    config = settings()
    found = census(broker_client(config), silence_seconds=config.worker_silence_seconds)
    now = utcnow()
    with session() as s:
        scheduler = scheduler_state(s, now)
    data = {"workers": [w.as_dict() for w in found.workers], "live_workers": len(found.live),
            "other_live_processes": found.other_live_processes, "scheduler": scheduler.as_dict(),
            "scheduler_alive": scheduler.silent_seconds is not None
            and scheduler.silent_seconds <= config.ops_scheduler_silence_seconds}

    def render(d: dict[str, Any]) -> None:
        table = Table("host", "pid", "queues", "threads", "last seen", "state", title="Worker processes")
        for w in d["workers"]:
            seen = "-" if w["last_seen"] is None else f"{(now - w['last_seen']).total_seconds():.0f} s ago"
            table.add_row(w["host"], str(w["pid"]), " ".join(w["queues"]), str(w["threads"]), seen,
                          "live" if w["alive"] else "dead")
        console().print(table)
        click.echo(f"{d['live_workers']} live worker process(es); {d['other_live_processes']} other "
                   "process(es) talking to the broker (scheduler, admin, senders)")
        sched = d["scheduler"]
        if sched["last_run"] is None:
            click.echo(f"scheduler: {sched['job']} never ran")
        else:
            state = "alive" if d["scheduler_alive"] else "SILENT"
            click.echo(f"scheduler: {state}, {sched['job']} last ran {sched['silent_seconds']:.0f} s ago "
                       f"({sched['last_run']:%Y-%m-%d %H:%M:%S} UTC)")

    emit(data, as_json, render)


# -- stats ----------------------------------------------------------------------------------


@click.command()
@click.option("--since", "since_text", default="24h", show_default=True,
              help="The window: 90m, 24h, 7d, 2w.")
@json_option
def stats(since_text: str, as_json: bool) -> None:
    """Per job and queue: runs, success rate, p50/p95 duration, over time limit; publishing lateness."""
    window = parse_window("--since", since_text)
    now = utcnow()
    with read_session() as s:
        per_job = job_stats(s, now - window, now)
        publishing = publishing_stats(s, now - window, now)
    data = {"since": now - window, "until": now, "jobs": [j.as_dict() for j in per_job],
            "queues": [q.as_dict() for q in queue_stats(per_job)], "publishing": publishing.as_dict()}

    def render(d: dict[str, Any]) -> None:
        for title, rows in (("Jobs", d["jobs"]), ("Queues", d["queues"])):
            table = Table("name", "queue", "runs", "ok", "failed", "running", "success", "p50", "p95",
                          "over limit", title=f"{title} since {d['since']:%Y-%m-%d %H:%M} UTC")
            for r in rows:
                table.add_row(r["name"], r["queue"], str(r["runs"]), str(r["succeeded"]), str(r["failed"]),
                              str(r["running"]), _rate(r["success_rate"]), _ms(r["p50_ms"]), _ms(r["p95_ms"]),
                              str(r["over_time_limit"]))
            console().print(table)
        table = Table("platform", "published", "late p50", "late p99", "late max", "failed", title="Publishing")
        p = d["publishing"]
        for r in [*p["platforms"], p]:
            table.add_row(r["platform"], str(r["published"]), _ms(r["late_p50_ms"]), _ms(r["late_p99_ms"]),
                          _ms(r["late_max_ms"]), str(r["failed"]))
        console().print(table)

    emit(data, as_json, render)


# -- check ----------------------------------------------------------------------------------


@click.command()
@click.option("--max-depth", type=click.IntRange(min=1), help="Queue depth threshold (OPS_QUEUE_DEPTH_MAX).")
@click.option("--min-success-rate", type=click.FloatRange(0, 100),
              help="Percent over 24 h (OPS_MIN_SUCCESS_RATE).")
@click.option("--scheduler-silence", type=click.IntRange(min=1),
              help="Seconds without a minute-job run (OPS_SCHEDULER_SILENCE_SECONDS).")
@json_option
def check(max_depth: int | None, min_success_rate: float | None, scheduler_silence: int | None,
          as_json: bool) -> None:
    """Exit 1 naming each crossed threshold (workers, scheduler, depth, dead letters, success, stuck posts)."""
    config = settings()
    defaults = Thresholds.from_settings(config)
    thresholds = Thresholds(max_depth or defaults.queue_depth_max,
                            defaults.min_success_rate if min_success_rate is None else min_success_rate,
                            scheduler_silence or defaults.scheduler_silence_seconds)
    now = utcnow()
    client = broker_client(config)
    with session() as s:
        snapshot = take_snapshot(client, s, config, now)
    found = problems(snapshot, thresholds)
    data = {"healthy": not found, "problems": [p.as_dict() for p in found],
            "thresholds": thresholds.__dict__, "snapshot": snapshot_dict(snapshot)}

    def render(d: dict[str, Any]) -> None:
        if not found:
            click.echo("OK: every queue has a live worker, the scheduler ticks, no dead letters, "
                       "success rates and depths within thresholds, no stuck posts")
        for problem in found:
            click.echo(f"FAIL {problem}")

    emit(data, as_json, render)
    if found:
        sys.exit(EXIT_UNHEALTHY)


__all__ = ["EXIT_BAD_INPUT", "check", "parse_window", "queues", "stats", "workers"]
