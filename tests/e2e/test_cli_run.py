"""`autopilot run` stops cleanly on Ctrl-C and resumes where it left off; `periodiq actors.entrypoint` starts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app import migrate
from app.db import make_engine
from app.migrate import ROOT
from app.models import JobRun

#: Catch-up windows wider than the jobs' periods (plus the catch-up's two-minute settle), so
#: the latest daily and weekly slots are always missed and caught up, whatever the hour or day.
WIDE_CATCH_UP = {"DAILY_CATCH_UP_HOURS": "48", "WEEKLY_CATCH_UP_HOURS": str(8 * 24)}
#: The jobs that catch up: the daily and weekly ones.
CATCH_UP_JOBS = ["daily_generation", "metrics_collection", "weekly_report"]


@pytest.fixture(autouse=True)
def children_take_ctrl_c() -> Iterator[None]:
    """Children inherit an *ignored* SIGINT (a shell ignores it for what it starts in the
    background, and Python then installs no KeyboardInterrupt handler): make it the default
    again here, so the children these tests Ctrl-C hear it as they would in a terminal."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_until_ready(url: str, cwd) -> tuple[subprocess.Popen, int]:  # type: ignore[no-untyped-def]
    """Start `autopilot run`; return the process and how many recovery messages it sent."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"DATABASE_URL": url, **WIDE_CATCH_UP, **FAULTHANDLER}
    process = subprocess.Popen([sys.executable, "-m", "app", "run", "--threads", "2"], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    for line in process.stdout:
        if "autopilot running" in line:
            return process, int(re.search(r"(\d+) recovery message", line).group(1))  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "autopilot run did not start"
    raise AssertionError("autopilot run exited before starting")


def catch_up_runs(engine) -> list[tuple]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(JobRun.job, JobRun.slot, JobRun.claimed_at, JobRun.status)
            .where(JobRun.trigger == "catch_up").order_by(JobRun.job))]


def wait_for_catch_up(engine, count: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Wait until ``count`` catch-up runs exist and none is still running (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = catch_up_runs(engine)
        if len(runs) >= count and all(r[3] != "running" for r in runs):
            return runs
        time.sleep(0.2)
    raise AssertionError(f"catch-up did not finish: {catch_up_runs(engine)}")


#: Set for every child: on SIGABRT it prints each thread's stack, so a stop that hangs says where.
FAULTHANDLER = {"PYTHONFAULTHANDLER": "1"}
#: Seconds a child may take to stop after Ctrl-C (a few normally; generous for a loaded machine).
STOP_SECONDS = 120


def stop(process: subprocess.Popen) -> str:
    """Ctrl-C the child and return its output; a child still running after STOP_SECONDS fails the
    test with its threads' stacks."""
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        out, _ = process.communicate(timeout=30)
        raise AssertionError(f"still running {STOP_SECONDS} s after Ctrl-C; its stacks:\n{out[-6000:]}") from None
    assert process.returncode == 0, out
    return out


def test_run_stops_cleanly_on_ctrl_c_and_resumes_without_redoing_work(tmp_path):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    first, sent = run_until_ready(url, tmp_path)
    assert sent == len(CATCH_UP_JOBS)  # an empty database: only the missed slots to catch up
    before = wait_for_catch_up(engine, sent)
    assert [run[0] for run in before] == CATCH_UP_JOBS
    assert "stopped" in stop(first)

    second, sent_again = run_until_ready(url, tmp_path)
    assert sent_again == 0  # nothing is left to resume: the first run finished its slots
    time.sleep(1)
    stop(second)
    assert catch_up_runs(engine) == before  # the same rows: no slot was claimed or run again
    assert all(run[3] == "succeeded" for run in before)
    engine.dispose()


def test_an_alarm_before_the_first_tick_is_a_tick_not_a_crash(tmp_path):
    """periodiq arms SIGALRM before installing its handler on the first tick; `autopilot run`
    installs it first, so an alarm that comes early (a main thread kept from the GIL by busy
    workers) wakes the scheduler instead of killing the process."""
    url = f"sqlite:///{tmp_path / 'alarm.db'}"
    migrate.upgrade(url)
    process, _ = run_until_ready(url, tmp_path)
    process.send_signal(signal.SIGALRM)
    time.sleep(2)
    assert process.poll() is None, f"killed by signal {-process.returncode}" if process.returncode else "exited"
    assert "stopped" in stop(process)


def test_periodiq_scheduler_starts_from_the_repo_root_and_lists_the_jobs(tmp_path):
    env = ({k: v for k, v in os.environ.items() if k != "REDIS_URL"}
           | {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", **FAULTHANDLER})
    periodiq = Path(sys.executable).parent / "periodiq"
    process = subprocess.Popen([str(periodiq), "actors.entrypoint"], env=env, text=True, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    jobs = [("daily_generation", "0 6 * * *"), ("metrics_collection", "0 2 * * *"),
            ("weekly_report", "0 8 * * 0,7"), ("dispatch_due_posts", "* * * * *"),
            ("sweep_stuck_posts", "*/15 * * * *")]
    listed = [f"actors.periodic:{job}@" for job, _ in jobs]
    # Read until the scheduler has listed every job (startup takes seconds on a loaded machine),
    # then interrupt it; a scheduler that lists nothing is stopped after a minute and fails below.
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(any(m in line for line in lines) for m in listed):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=30)
        reader.join(timeout=10)
        raise AssertionError(f"periodiq still running {STOP_SECONDS} s after Ctrl-C:\n{''.join(lines)[-6000:]}") from None
    reader.join(timeout=10)
    out = "".join(lines)
    for job, spec in jobs:
        assert f"actors.periodic:{job}@" in out and spec in out, out
