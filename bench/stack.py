"""What the publishing benches share: X accounts on the fake, the posting workers, the teardown.

``bench.burst``, ``bench.throughput`` and ``bench.punctuality`` each build a throwaway database,
connect accounts to the tests' fake X, start the Procfile's posting worker and tear it all down
again, whatever happened; one copy of those steps lives here.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.procfile import ROOT, posting_worker, worker_env
from bench.punctuality import stop_workers


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
        return subprocess.Popen(
            [sys.executable, "-m", "dramatiq", module, "-Q", "posting",
             "--processes", str(processes), "--threads", str(threads)],
            env=env, cwd=str(ROOT), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


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
