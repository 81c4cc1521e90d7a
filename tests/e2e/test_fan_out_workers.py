"""Real worker processes on Redis and PostgreSQL: duplicates and a killed worker lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import dramatiq
import pytest
from sqlalchemy import func, select

from app.broker import build_broker
from app.config import Settings
from app.models import JobRun, Post, WorkflowExecution
from tests.factories import make_users
from tests.workers import wait_for

pytestmark = pytest.mark.slow
USERS = 24
#: Posts per user in one daily run: UTC users, two posts a day on each of two platforms. In UTC
#: every 24-hour window holds each daily posting time exactly once, whatever hour it starts.
POSTS_PER_USER = 4


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "actors.entrypoint", "-Q", "autonomous", "legacy", "--processes", "1",
         "--threads", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def succeeded(runtime) -> int:
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).select_from(WorkflowExecution)
                              .where(WorkflowExecution.status == "succeeded")) or 0


@pytest.fixture
def now() -> datetime:
    """The real clock: the worker subprocesses read it too."""
    return datetime.now(UTC)



def test_duplicate_ticks_and_a_killed_worker_still_run_every_user_exactly_once(runtime, redis_url, pg_url):
    # The worker processes read the real clock, so the slot is derived from it: generation
    # fills [slot, slot + 24 h) and skips slots already past their grace by the real clock.
    slot = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    make_users(runtime, USERS, timezone="UTC")
    env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
           "TOKEN_ENCRYPTION_KEYS": runtime.settings.token_encryption_keys[0],
           # Requeue a dead worker's messages after 1 s, checking on every call.
           "REDIS_HEARTBEAT_TIMEOUT_MS": "1000", "REDIS_MAINTENANCE_CHANCE": "1000000"}
    broker = build_broker(Settings(database_url=pg_url, redis_url=redis_url))
    # Two schedulers fire the same slot, and an operator triggers it by hand.
    for queue, actor, args in [("autonomous", "daily_generation", (slot, "periodic")),
                               ("autonomous", "daily_generation", (slot, "periodic")),
                               ("legacy", "run_job_manually", ("daily_generation", slot))]:
        broker.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={}))

    worker = start_worker(env)
    try:
        assert wait_for(lambda: succeeded(runtime) >= 3, 60), worker.stderr
        os.killpg(worker.pid, signal.SIGKILL)  # mid-fan-out: some users done, others not
        worker.wait()
        done_at_kill = succeeded(runtime)
        assert done_at_kill < USERS
        worker = start_worker(env)
        assert wait_for(lambda: succeeded(runtime) == USERS, 120)
        time.sleep(1.0)  # let any late duplicate land before counting
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        broker.close()

    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 1
        per_user = session.execute(select(WorkflowExecution.user_id, func.count())
                                   .group_by(WorkflowExecution.user_id)).all()
        assert len(per_user) == USERS and all(count == 1 for _, count in per_user)
        posts = session.execute(select(Post.user_id, func.count()).group_by(Post.user_id)).all()
        assert len(posts) == USERS and all(count == POSTS_PER_USER for _, count in posts)
