"""Throughput: posts published per second through the whole pipeline, against Dramatiq's own.

Both runs use the same Redis, the same worker settings (the Procfile's posting worker,
``--processes P --threads T`` with ``dramatiq_queue_prefetch`` = T) and the same measurement: from the first message sent to the
last one done.

* ``pipeline``: N posts due now across M accounts on a throwaway PostgreSQL database; the real
  minute tick (``dispatch_due_posts``) claims them and sends their publish messages; the
  workers publish through the real X client to the tests' fake X answering at once. Done: the
  last create reached X.
* ``noop``: K messages to a bare no-op actor (:mod:`bench.noop_actors`) on the same broker and
  middleware. Done: Dramatiq's queue is empty and every message acknowledged.

It prints both rates and their ratio (the target: at least 0.15).

    python -m bench.throughput --posts 10000 --noop 10000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.queues import Queue  # noqa: E402
from bench.procfile import add_worker_arguments  # noqa: E402
from bench.stack import (  # noqa: E402
    NOOP_ACTOR,
    REDIS_URL,
    connect_x_accounts,
    start_posting_workers,
    stop_workers,
    tear_down,
    wait_for_workers,
)

#: The most either run may take.
BUDGET_SECONDS = 300.0
#: Our own posting limit per X account, raised so the run measures the pipeline, not it.
POSTS_PER_15_MIN = 100_000


def run_noop(args: argparse.Namespace, client, logdir: Path) -> float:  # type: ignore[no-untyped-def]
    """Messages per second through the bare no-op actor."""
    import dramatiq

    from app.broker import build_broker
    from app.config import Settings
    from app.ops.queues import queue_depths

    client.flushdb()
    env = {**os.environ, "REDIS_URL": REDIS_URL, "DATABASE_URL": "sqlite://",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = start_posting_workers(env, args.processes, args.threads, logdir / "noop.log", prefetch=args.prefetch,
                                 module="bench.noop_actors")
    try:
        if not wait_for_workers(client, args.processes, 60):
            raise RuntimeError(f"no-op workers did not start; see {logdir / 'noop.log'}")
        broker = build_broker(Settings(redis_url=REDIS_URL))
        started = time.monotonic()
        for _ in range(args.noop):
            broker.enqueue(dramatiq.Message(queue_name=Queue.POSTING, actor_name=NOOP_ACTOR, args=(), kwargs={},
                                            options={}))
        deadline = started + BUDGET_SECONDS
        while time.monotonic() < deadline:
            if queue_depths(client, (Queue.POSTING,))[0].depth == 0:
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        broker.close()
        return args.noop / elapsed
    finally:
        stop_workers(proc)


def run_pipeline(args: argparse.Namespace, client, logdir: Path) -> float:  # type: ignore[no-untyped-def]
    """Posts per second through the tick, the publish actor, the X client and the database."""
    from cryptography.fernet import Fernet

    from actors.messages import send_tick
    from app.broker import build_broker
    from app.config import Settings
    from app.migrate import upgrade
    from app.models import Post, PostStatus
    from app.providers.x import XPublisher
    from app.runtime import Runtime
    from app.workflows.dispatch import DISPATCH_DUE_POSTS
    from tests.fakes.x import FakeX
    from tests.services import create_pg_database

    client.flushdb()
    fake = FakeX()
    fake.__enter__()
    db_url = create_pg_database()
    proc = None
    runtime = None
    try:
        upgrade(db_url)
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": REDIS_URL,
               "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "X_CLIENT_ID": "bench",
               "X_API_BASE_URL": fake.base_url, "X_POSTS_PER_15_MIN": str(POSTS_PER_15_MIN),
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("SENTRY_DSN", None)
        settings = Settings.from_env(env)
        runtime = Runtime.from_settings(settings)
        now = datetime.now(UTC)
        users = connect_x_accounts(runtime, fake, args.accounts, "tp", now)
        proc = start_posting_workers(env, args.processes, args.threads, logdir / "pipeline.log",
                                     prefetch=args.prefetch)
        if not wait_for_workers(client, args.processes, 60):
            raise RuntimeError(f"workers did not start; see {logdir / 'pipeline.log'}")
        due = datetime.now(UTC)  # due now: every post is sent at once, the actor does not wait
        with runtime.session_factory() as session, session.begin():
            session.add_all(Post(user_id=users[n % len(users)], platform=XPublisher.platform, text=f"throughput #{n}",
                                 origin="manual", status=PostStatus.SCHEDULED, scheduled_at=due)
                            for n in range(args.posts))
        broker = build_broker(settings)
        started = time.time()
        send_tick(broker, DISPATCH_DUE_POSTS.name, due.replace(second=0, microsecond=0))
        broker.close()
        deadline = time.monotonic() + BUDGET_SECONDS
        # A cheap poll (the fake's tweet count): filtering its whole request log every 50 ms
        # would take the GIL from the fake X serving the workers in this same process.
        while time.monotonic() < deadline and len(fake.posts) < args.posts:
            time.sleep(0.05)
        created = [r for r in list(fake.requests) if (r.method, r.path) == ("POST", "/2/tweets")]
        if len(created) < args.posts:
            raise RuntimeError(f"only {len(created)} of {args.posts} posts reached X; see {logdir}")
        return args.posts / (max(r.received_at for r in created) - started)
    finally:
        tear_down(proc, fake, runtime, db_url)


def main(argv: list[str] | None = None) -> int:
    import redis

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=10000)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--noop", type=int, default=0,
                        help="messages to the no-op actor (default: as many as --posts, so both runs "
                             "amortise their start the same way)")
    add_worker_arguments(parser)
    args = parser.parse_args(argv)
    args.noop = args.noop or args.posts
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=30)
    logdir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    print(f"{args.processes} processes x {args.threads} threads on {REDIS_URL} ...", flush=True)
    pipeline = run_pipeline(args, client, logdir)
    print(f"pipeline: {pipeline:,.1f} posts/s ({args.posts} posts, {args.accounts} accounts, X answering at once)")
    noop = run_noop(args, client, logdir)
    print(f"no-op actor: {noop:,.1f} messages/s ({args.noop} messages)")
    print(f"ratio pipeline / no-op: {pipeline / noop:.3f} (the target: at least 0.15); logs in {logdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
