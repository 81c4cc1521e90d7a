"""Daily-generation fan-out benchmark: how fast do real workers get N users through one tick?

Runs the real path end to end on a throwaway PostgreSQL database and Redis db 14, with the
offline providers (no API keys): N opted-in users, then

* ``workers``: P ``dramatiq actors.entrypoint -Q autonomous legacy`` processes (T threads each) are started
  and ready; one raw ``daily_generation`` tick message for the current minute's slot is enqueued,
  and the clock runs from that enqueue until all N executions have succeeded (polled in the DB).
* ``baseline``: the same work in this one process on a fresh database: ``run_tick``, then
  ``generate_for_user`` for every execution in a loop, then ``finish_tick``.

Also counts the SQL statements the fan-out tick itself issues (``run_tick`` for N users and
for N/10 users, the latter on its own small database): the fan-out is constant in queries.

Generation goes to a local OpenAI-compatible fake (tests/fakes/openai.py, real sockets, the
official SDK) taking ``--openai-latency-ms`` per request (300 by default; 0: the offline
templates). Then the ideal is users x calls per user x latency / worker threads, and the bench
prints the ratio of the measured time to it, the peak memory (VmHWM) of each worker process and
the SQL statements per user (counted in the baseline, which then runs on ``--baseline-users``).

    python -m bench.fanout --users 1000 --processes 2 --threads 4
    BENCH_REDIS_URL=redis://127.0.0.1:6379/3 python -m bench.fanout   # another Redis db (flushed)
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
from bench.stack import REDIS_URL, start_workers, stop_workers, wait_for_workers  # noqa: E402

TIME_ZONES = ["America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney",
              "America/Los_Angeles", "Europe/Berlin", "UTC"]
WORKFLOW = "daily_generation"
#: Whole-run budget: every wait is bounded by it.
BUDGET_SECONDS = 600.0
#: Settings that would switch on online providers (or other side effects) are kept out.
SCRUBBED_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "SERPER_API_KEY", "SENTRY_DSN", "SMTP_HOST",
                "DATABASE_URL", "REDIS_URL")
#: The most the fan-out may take over its ideal.
DEFAULT_MAX_IDEAL_RATIO = 1.25


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise TimeoutError(f"aborted: {BUDGET_SECONDS:.0f} s budget exhausted during {what}")


def current_slot(now: datetime) -> datetime:
    """The slot the bench's tick runs for: this minute, so the next 24 hours (which a daily run
    fills) hold every user's posting times whatever the hour the bench runs. The latest 06:00
    slot would leave nothing to write after about 10:00 UTC: its window is mostly past."""
    return now.astimezone(UTC).replace(second=0, microsecond=0)


#: OPENAI_* settings pointing at the bench's fake, when one runs (set by main()).
OPENAI_ENV: dict[str, str] = {}
#: The fake OpenAI server of this run, if any.
FAKE: list = []  # type: ignore[type-arg]


def base_env(db_url: str, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(DATABASE_URL=db_url, REDIS_URL=REDIS_URL, TOKEN_ENCRYPTION_KEYS=key,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **OPENAI_ENV)
    return env


def worker_peak_memory_mb(parent_pid: int) -> list[float]:
    """VmHWM (peak resident memory) of each worker process under ``parent_pid``, in MB."""
    peaks = []
    for pid in Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


class Database:
    """A throwaway migrated database and a runtime over it (offline providers)."""

    def __init__(self, key: str) -> None:
        from app.config import Settings
        from app.migrate import upgrade
        from app.runtime import Runtime
        from tests.services import create_pg_database

        self.url = create_pg_database()
        self.runtime = None
        try:
            upgrade(self.url)
            self.env = base_env(self.url, key)
            self.runtime = Runtime.from_settings(Settings.from_env(self.env))
        except BaseException:
            self.close()
            raise

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.runtime.session_factory.kw["bind"]

    def close(self) -> None:
        from tests.services import drop_pg_database

        if self.runtime is not None:
            self.engine.dispose()
        try:
            drop_pg_database(self.url)
        except Exception as exc:  # noqa: BLE001 - cleanup must not lose the figures
            print(f"warning: could not drop {self.url}: {exc}", file=sys.stderr)


def make_users(db: Database, count: int) -> None:
    """``count`` opted-in users through ``create_user`` (validation + audit), one transaction."""
    from app.platforms import KNOWN_PLATFORMS
    from app.users import create_user

    first, second = KNOWN_PLATFORMS[:2]  # the registry's first two platforms
    with db.runtime.session_factory() as session, session.begin():
        for i in range(count):
            create_user(session, f"fanout{i}@example.com", {
                "enable_autonomous_mode": True, "timezone": TIME_ZONES[i % len(TIME_ZONES)],
                "preferred_platforms": [first, second], "content_frequency": 7,
                "posting_times": {first: ["09:00", "18:00"], second: ["10:00"]},
                "topics": ["python"]}, actor="bench")


def verify(db: Database, slot: datetime, users: int) -> dict:  # type: ignore[type-arg]
    """Executions per user, their statuses, posts, and (user, platform, slot) duplicates."""
    from sqlalchemy import func, select

    from app.models import JobRun, Post, WorkflowExecution

    with db.runtime.session_factory() as session:
        per_user = session.execute(
            select(WorkflowExecution.user_id, func.count())
            .where(WorkflowExecution.workflow == WORKFLOW, WorkflowExecution.slot == slot)
            .group_by(WorkflowExecution.user_id)).all()
        statuses = dict(session.execute(
            select(WorkflowExecution.status, func.count())
            .where(WorkflowExecution.workflow == WORKFLOW, WorkflowExecution.slot == slot)
            .group_by(WorkflowExecution.status)).all())
        posts = session.scalar(select(func.count()).select_from(Post)) or 0
        dup_groups = session.execute(
            select(Post.user_id, Post.platform, Post.slot_at, func.count())
            .group_by(Post.user_id, Post.platform, Post.slot_at).having(func.count() > 1)).all()
        job_runs = session.scalar(select(func.count()).select_from(JobRun).where(JobRun.job == WORKFLOW)) or 0
    return {
        "executions": sum(c for _, c in per_user),
        "users_with_execution": len(per_user),
        "one_per_user": len(per_user) == users and all(c == 1 for _, c in per_user),
        "statuses": {str(getattr(k, "value", k)): v for k, v in statuses.items()},
        "posts": posts,
        "duplicate_posts": sum(c - 1 for *_, c in dup_groups),
        "job_runs": job_runs,
    }


def count_succeeded_failed(db: Database, slot: datetime) -> tuple[int, int]:
    from sqlalchemy import func, select

    from app.models import WorkflowExecution

    with db.runtime.session_factory() as session:
        rows = dict(session.execute(
            select(WorkflowExecution.status, func.count())
            .where(WorkflowExecution.workflow == WORKFLOW, WorkflowExecution.slot == slot)
            .group_by(WorkflowExecution.status)).all())
    by_name = {str(getattr(k, "value", k)): v for k, v in rows.items()}
    return by_name.get("succeeded", 0), by_name.get("failed", 0)


# -- the two modes --------------------------------------------------------------------------


def run_workers(args: argparse.Namespace, key: str, slot: datetime, deadline: Deadline) -> dict:  # type: ignore[type-arg]
    import redis

    from actors.messages import send_tick
    from app.broker import build_broker
    from app.config import Settings

    rclient = redis.Redis.from_url(REDIS_URL, socket_timeout=30)
    rclient.flushdb()
    db = Database(key)
    proc = None
    broker = None
    logdir = tempfile.mkdtemp(prefix="bench-fanout-")
    log_path = os.path.join(logdir, "workers.log")
    log = open(log_path, "wb")  # noqa: SIM115
    result: dict = {"mode": "workers", "users": args.users}  # type: ignore[type-arg]
    try:
        t0 = time.monotonic()
        make_users(db, args.users)
        print(f"  created {args.users} users in {time.monotonic() - t0:.1f} s", flush=True)

        t0 = time.monotonic()
        proc = start_workers(db.env, [Queue.AUTONOMOUS, Queue.LEGACY], args.processes, args.threads, log)
        if not wait_for_workers(rclient, args.processes, min(60.0, max(1.0, deadline.left()))):
            raise RuntimeError(f"workers did not start; see {log_path}")
        time.sleep(1.0)  # every consumer thread is listening
        result["startup_s"] = time.monotonic() - t0

        broker = build_broker(Settings(database_url=db.url, redis_url=REDIS_URL))
        started = time.monotonic()
        send_tick(broker, WORKFLOW, slot)
        succeeded = failed = 0
        while True:
            succeeded, failed = count_succeeded_failed(db, slot)
            if succeeded + failed >= args.users:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"workers exited ({proc.returncode}); see {log_path}")
            deadline.check(f"workers ({succeeded}/{args.users} succeeded)")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        result["peak_mb"] = worker_peak_memory_mb(proc.pid)
        time.sleep(1.0)  # let any late duplicate land before counting
        result.update(seconds=elapsed, succeeded=succeeded, failed=failed, **verify(db, slot, args.users))
        return result
    finally:
        stop_workers(proc)
        log.close()
        if broker is not None:
            broker.close()
        db.close()
        try:
            rclient.flushdb()
        except Exception as exc:  # noqa: BLE001
            print(f"warning: could not flush {REDIS_URL}: {exc}", file=sys.stderr)
        if result.get("failed") == 0 and result.get("one_per_user") and result.get("duplicate_posts") == 0:
            import shutil

            shutil.rmtree(logdir, ignore_errors=True)
            result["log"] = "removed"
        else:
            result["log"] = log_path


class StatementCounter:
    """Counts every SQL statement sent on an engine while active."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.engine = engine
        self.count = 0

    def _on(self, *args: object, **kwargs: object) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._on)


def run_baseline(args: argparse.Namespace, key: str, slot: datetime, deadline: Deadline) -> dict:  # type: ignore[type-arg]
    from app.workflows.generation import generate_for_user
    from app.workflows.ticks import finish_tick, run_tick

    db = Database(key)
    users = args.baseline_users
    result: dict = {"mode": "baseline", "users": users}  # type: ignore[type-arg]
    try:
        t0 = time.monotonic()
        make_users(db, users)
        print(f"  created {users} users in {time.monotonic() - t0:.1f} s", flush=True)
        started = time.monotonic()
        with StatementCounter(db.engine) as counter:
            tick = run_tick(db.runtime, WORKFLOW, slot, trigger="periodic", message_id="bench-baseline")
        assert tick.claimed, "the fresh database's slot was already claimed"
        result["tick_statements"] = counter.count
        result["tick_messages"] = len(tick.intents)
        succeeded = failed = 0
        with StatementCounter(db.engine) as per_user:
            for out in tick.intents:
                deadline.check(f"baseline ({succeeded + failed}/{len(tick.intents)} done)")
                execution = generate_for_user(db.runtime, out.execution_id, message_id=None)
                if execution is not None and not execution.error:
                    succeeded += 1
                else:
                    failed += 1
        result["statements_per_user"] = per_user.count / max(1, len(tick.intents))
        finish_tick(db.runtime, WORKFLOW, slot, sent=len(tick.intents))
        result.update(seconds=time.monotonic() - started, succeeded=succeeded, failed=failed,
                      **verify(db, slot, users))
        return result
    finally:
        db.close()


def tick_statements(users: int, key: str, slot: datetime) -> int:
    """SQL statements of ``run_tick`` alone on a fresh database with ``users`` opted-in users."""
    from app.workflows.ticks import run_tick

    db = Database(key)
    try:
        make_users(db, users)
        with StatementCounter(db.engine) as counter:
            tick = run_tick(db.runtime, WORKFLOW, slot, trigger="periodic", message_id="bench-count")
        assert tick.claimed and len(tick.intents) == users, (tick.claimed, len(tick.intents))
        return counter.count
    finally:
        db.close()


# -- report ---------------------------------------------------------------------------------


def report(r: dict) -> None:  # type: ignore[type-arg]
    extra = f" (workers ready after {r['startup_s']:.1f} s, not timed)" if "startup_s" in r else ""
    print(f"[{r['mode']}] users={r['users']} seconds={r['seconds']:.2f} succeeded={r['succeeded']} "
          f"failed={r['failed']} executions={r['executions']} one_per_user={r['one_per_user']} "
          f"posts={r['posts']} duplicate_posts={r['duplicate_posts']} job_runs={r['job_runs']}"
          f"{extra}" + (f" log={r['log']}" if "log" in r else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--openai-latency-ms", type=int, default=300,
                        help="each generation request's time at the fake OpenAI server (0: offline templates)")
    parser.add_argument("--baseline-users", type=int, default=None,
                        help="users of the in-process baseline (default: --users, or 40 with a latency)")
    args = parser.parse_args(argv)
    if args.users < 10:
        parser.error("--users must be at least 10")
    if args.baseline_users is None:
        args.baseline_users = args.users if args.openai_latency_ms == 0 else min(args.users, 40)

    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    for name in SCRUBBED_ENV:
        os.environ.pop(name, None)
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["TOKEN_ENCRYPTION_KEYS"] = key

    fake = None
    if args.openai_latency_ms > 0:
        from tests.fakes.openai import DEFAULT_API_KEY, DEFAULT_MODEL, FakeOpenAI

        fake = FakeOpenAI(latency=args.openai_latency_ms / 1000).__enter__()
        FAKE.append(fake)
        OPENAI_ENV.update(OPENAI_API_KEY=DEFAULT_API_KEY, OPENAI_BASE_URL=fake.url, OPENAI_MODEL=DEFAULT_MODEL)
        os.environ.update(OPENAI_ENV)
    try:
        return measure(args, key)
    finally:
        if fake is not None:
            fake.__exit__(None, None, None)


def measure(args: argparse.Namespace, key: str) -> int:
    deadline = Deadline(BUDGET_SECONDS)
    slot = current_slot(datetime.now(UTC))
    fake_calls = _chat_calls()
    print(f"slot {slot.isoformat()}; {args.users} users; {args.processes} processes x {args.threads} threads",
          flush=True)

    print("running workers ...", flush=True)
    workers = run_workers(args, key, slot, deadline)
    report(workers)
    calls = _chat_calls() - fake_calls
    print("running baseline ...", flush=True)
    baseline = run_baseline(args, key, slot, deadline)
    report(baseline)
    small = max(1, args.users // 10)
    deadline.check("statement count")
    small_count = tick_statements(small, key, slot)

    print()
    print(f"{'mode':<9} {'users':>6} {'seconds':>9} {'users/s':>9} {'posts':>7}")
    for r in (workers, baseline):
        print(f"{r['mode']:<9} {r['users']:>6} {r['seconds']:>9.2f} {r['users'] / r['seconds']:>9.1f} "
              f"{r['posts']:>7}")
    print(f"speed-up workers/baseline (users/s): "
          f"{(workers['users'] / workers['seconds']) / (baseline['users'] / baseline['seconds']):.2f}x")
    print(f"fan-out tick SQL statements: {baseline['tick_statements']} for {args.users} users, "
          f"{small_count} for {small} users")
    ok = all(r["one_per_user"] and r["duplicate_posts"] == 0 and r["failed"] == 0 for r in (workers, baseline))
    print(f"SQL statements per user (baseline, generate_for_user): {baseline['statements_per_user']:.1f}")
    print(f"peak memory per worker process: {', '.join(f'{mb:.0f} MB' for mb in workers['peak_mb'])}")
    if args.openai_latency_ms > 0 and calls == 0:
        print("generation calls: 0 (no user had a slot to fill: nothing measured against the ideal)")
        ok = False
    elif args.openai_latency_ms > 0:
        threads = args.processes * args.threads
        per_user = calls / args.users
        ideal = args.users * per_user * args.openai_latency_ms / 1000 / threads
        ratio = workers["seconds"] / ideal
        print(f"generation calls: {calls} for {args.users} users ({per_user:.2f} per user), "
              f"{args.openai_latency_ms} ms each")
        print(f"ideal {args.users} x {per_user:.2f} x {args.openai_latency_ms / 1000:.3f} s / {threads} threads "
              f"= {ideal:.2f} s; measured {workers['seconds']:.2f} s: {ratio:.3f}x ideal "
              f"({'OK' if ratio <= DEFAULT_MAX_IDEAL_RATIO else 'OVER'} {DEFAULT_MAX_IDEAL_RATIO}x)")
        ok = ok and ratio <= DEFAULT_MAX_IDEAL_RATIO
    print(f"checks (one execution per user, no duplicate posts, no failures"
          f"{', within the ideal ratio' if args.openai_latency_ms > 0 else ''}): {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def _chat_calls() -> int:
    """Chat completions the fake has received so far (0 without a fake)."""
    return len(FAKE[0].server.requests_to("/v1/chat/completions")) if FAKE else 0


if __name__ == "__main__":
    sys.exit(main())
