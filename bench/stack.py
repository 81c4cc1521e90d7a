"""What the benches share: their Redis, X accounts on the fake, the workers, the figures, teardown.

``bench.burst``, ``bench.throughput``, ``bench.punctuality`` and ``bench.fanout`` each build a
throwaway database, connect accounts to the tests' fake X, start the Procfile's workers, read
percentiles of what arrived and tear it all down again, whatever happened; one copy of those
steps lives here, and no bench imports another.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.queues import Queue
from app.redis_layout import heartbeats
from bench.procfile import ROOT, posting_worker, worker_env

#: The benches' Redis: db 14, apart from the tests' and a developer's default db.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
#: The throughput bench's baseline actor (``bench.noop_actors``), not one of the project's.
NOOP_ACTOR = "noop"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def post_id_of(text: str) -> int | None:
    """The post id a bench wrote into a post's text (``bench post #<id> ...``), if any."""
    marker = "bench post #"
    if marker not in text:
        return None
    digits = text.split(marker, 1)[1].split(" ", 1)[0]
    return int(digits) if digits.isdigit() else None


def wait_for_workers(client, processes: int, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    """Until ``processes`` Dramatiq processes heartbeat in Redis (or the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(heartbeats(client)) >= processes:
                return True
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.2)
    return False


def start_workers(env: dict[str, str], queues: list[str], processes: int, threads: int,
                  log: Any, *, module: str = "actors.entrypoint") -> subprocess.Popen:  # type: ignore[type-arg]
    """``dramatiq <module> -Q <queues>`` in its own session (so :func:`stop_workers` stops the
    whole group), writing to ``log`` (an open binary file)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dramatiq", module, "-Q", *queues,
         "--processes", str(processes), "--threads", str(threads)],
        env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_workers(proc: subprocess.Popen | None) -> None:  # type: ignore[type-arg]
    """SIGTERM the workers' process group, SIGKILL it if it has not stopped within 15 s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def connect_x_accounts(runtime: Any, fake: Any, count: int, prefix: str, now: datetime) -> list[int]:
    """``count`` users (autonomous mode off), each with an X account on ``fake`` valid for a year;
    their ids, in one transaction."""
    from app.providers.base import TokenSet
    from app.providers.x import XPublisher
    from app.users import connect_account, create_user

    users = []
    with runtime.session_factory() as session, session.begin():
        for i in range(count):
            email = f"{prefix}{i}@example.com"
            users.append(create_user(session, email, {"enable_autonomous_mode": False}).id)
            connect_account(session, runtime.vault, email, XPublisher.platform,
                            TokenSet(fake.access_token, None, expires_at=now + timedelta(days=365)),
                            external_id=fake.user_id, now=now)
    return users


def start_posting_workers(env: dict[str, str], processes: int, threads: int, log: Path, *,
                          prefetch: int = 0, module: str = "actors.entrypoint") -> subprocess.Popen:  # type: ignore[type-arg]
    """``dramatiq <module> -Q posting`` as the Procfile's posting worker runs, in its own session
    (so :func:`stop_workers` stops the whole group), logging to ``log``."""
    env = {**env, **worker_env(posting_worker(), threads, prefetch)}
    with log.open("wb") as handle:
        return start_workers(env, [Queue.POSTING], processes, threads, handle, module=module)


def tear_down(proc: subprocess.Popen | None, fake: Any, runtime: Any, db_url: str) -> None:  # type: ignore[type-arg]
    """Stop the workers and the fake, close the database pool and drop the database; a failure
    to drop is a warning (the figures are already printed or returned)."""
    from tests.services import drop_pg_database

    stop_workers(proc)
    fake.__exit__(None, None, None)
    if runtime is not None:
        runtime.session_factory.kw["bind"].dispose()
    try:
        drop_pg_database(db_url)
    except Exception as exc:  # noqa: BLE001
        print(f"warning: could not drop {db_url}: {exc}", file=sys.stderr)
