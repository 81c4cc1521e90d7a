"""``autopilot demo`` and ``autopilot run``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from app.cli.common import console, emit, json_option


@click.command()
@click.option("--database", type=click.Path(dir_okay=False, path_type=Path), default=Path("autopilot-demo.db"),
              show_default=True, help="SQLite file to (re)create for the demo.")
@json_option
def demo(database: Path, as_json: bool) -> None:
    """Simulate one week on embedded defaults: SQLite, in-process broker, offline providers."""
    from app.demo import DEMO_DAYS, DEMO_START, run_demo

    out = console(stderr=as_json)
    out.print(f"[bold]Content autopilot demo[/]: {DEMO_DAYS} simulated days from {DEMO_START:%a %d %b %Y} (UTC), "
                  "offline providers [yellow](simulated research, templates, sandbox publishing, simulated metrics)[/]")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=out,
                  transient=True) as progress:
        task = progress.add_task("starting", total=None)

        def on_progress(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, description=label)

        result = run_demo(database, on_progress=on_progress)

    data: dict[str, Any] = {"database": result.database, "providers": result.providers, "rows": result.rows,
                            "highlights": result.highlights}

    def render(d: dict[str, Any]) -> None:
        table = Table(title="One simulated week")
        for column in ("user", "platform", "posts", "published", "on time", "with image", "review",
                       "impressions", "interactions", "engagement"):
            table.add_column(column, justify="left" if column in ("user", "platform") else "right")
        for r in d["rows"]:
            table.add_row(r["user"], r["platform"], str(r["posts"]), str(r["published"]), str(r["on_time"]),
                          str(r["with_image"]), str(r["review"]),
                          str(r["impressions"]) if r["engagement"] is not None else "not reported",
                          str(r["interactions"]),
                          f"{r['engagement']:.1%}" if r["engagement"] is not None else "not reported")
        out.print(table)
        out.print("[bold]Report highlights[/] (Sunday 08:00 UTC):")
        for email, lines in d["highlights"].items():
            for line in lines or ["(no recommendation)"]:
                out.print(f"  {email}: {line}")
        out.print("Providers: " + ", ".join(f"{k}={v}" for k, v in d["providers"].items()))
        out.print(f"Database: {d['database']} (inspect with `DATABASE_URL={d['database']} autopilot posts list`)")

    emit(data, as_json, render)


@click.command()
@click.option("--threads", default=8, show_default=True, help="Worker threads for all queues.")
def run(threads: int) -> None:
    """Scheduler and worker for every queue in one process (single-user self-hosting).

    Uses REDIS_URL and DATABASE_URL when set, else the in-process broker and SQLite.
    Ctrl-C stops cleanly; on restart, missed slots are caught up and lost posts re-queued.
    """
    import logging

    import dramatiq
    import periodiq

    import actors
    from actors.liveness import probe_for
    from actors.messages import send
    from app import migrate
    from app.queues import QUEUES
    from app.runtime import get_runtime
    from app.workflows.ticks import recovery_intents

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = get_runtime()
    migrate.upgrade(runtime.settings.database_url)
    broker = actors.setup(runtime.settings)
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    in_process = not runtime.settings.redis_url
    probe = probe_for(broker, runtime.settings.worker_silence_seconds)
    sent = send(recovery_intents(runtime, runtime.now(), messages_lost=in_process, messages=probe),
                runtime.now())
    periodic = [a for a in broker.actors.values() if "periodic" in a.options]
    scheduler = periodiq.Scheduler(actors=periodic)
    # periodiq arms its alarm *before* it installs the SIGALRM handler, on its first tick only: a
    # main thread kept from the GIL past the alarm (worker threads busy catching up) died of
    # SIGALRM's default action. Installed first, the alarm always finds the handler.
    signal.signal(signal.SIGALRM, scheduler.signal_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    click.echo(f"autopilot running: queues {', '.join(QUEUES)}; "
               f"{sent} recovery message(s) sent; Ctrl-C to stop")
    try:
        scheduler.schedule()
        scheduler.loop()
    except KeyboardInterrupt:
        click.echo("stopping: finishing messages in progress")
    finally:
        worker.stop()
    click.echo("stopped")
