"""`autopilot run` stops cleanly on Ctrl-C and resumes where it left off; `periodiq actors` starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from app.db import make_engine
from app.migrate import ROOT
from app.models import JobRun


def run_until_ready(url: str, cwd) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"DATABASE_URL": url}
    process = subprocess.Popen([sys.executable, "-m", "app", "run", "--threads", "2"], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    for line in process.stdout:
        if "autopilot running" in line:
            return process
        assert time.monotonic() < deadline, "autopilot run did not start"
    raise AssertionError("autopilot run exited before starting")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def test_run_stops_cleanly_on_ctrl_c_and_resumes_without_redoing_work(tmp_path):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    first = run_until_ready(url, tmp_path)
    time.sleep(2)  # let the start-up catch-up messages run
    assert "stopped" in stop(first)
    engine = make_engine(url)
    with engine.connect() as conn:
        runs_before = conn.execute(select(JobRun.job, JobRun.slot, JobRun.status)).all()
    second = run_until_ready(url, tmp_path)
    time.sleep(2)
    stop(second)
    with engine.connect() as conn:
        runs_after = conn.execute(select(JobRun.job, JobRun.slot, JobRun.status)).all()
    engine.dispose()
    daily = [r for r in runs_after if r.job == "daily_generation"]
    # The latest daily slot is within the catch-up window at most hours of the day (06:00-12:00 UTC);
    # whatever ran the first time is not run again, and nothing is left half-done.
    assert [r for r in runs_before if r.job == "daily_generation"] == daily
    assert all(r.status == "succeeded" for r in runs_after)


def test_periodiq_scheduler_starts_from_the_repo_root_and_lists_the_jobs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    periodiq = Path(sys.executable).parent / "periodiq"
    process = subprocess.Popen([str(periodiq), "actors"], env=env, text=True, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(4)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    for job, spec in [("daily_generation", "0 6 * * *"), ("metrics_collection", "0 2 * * *"),
                      ("weekly_report", "0 8 * * 0,7"), ("dispatch_due_posts", "* * * * *"),
                      ("sweep_stuck_posts", "*/15 * * * *")]:
        assert f"actors.periodic:{job}@" in out and spec in out, out
