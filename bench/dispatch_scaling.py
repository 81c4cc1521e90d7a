"""Dispatch and sweep cost against the size and content of the posts' history.

For each history (published, cancelled or reviewed posts) the real ``dispatch_due_posts`` and
``sweep_stuck_posts`` run on two throwaway PostgreSQL databases migrated to head: a small one
(``--small`` posts scheduled tomorrow + as many past posts) and a big one (``--big`` + ``--big``,
default 1,000,000 + 1,000,000), built inside PostgreSQL with ``INSERT ... SELECT
generate_series`` (bench/history.py; the table's indexes and constraints are dropped for the load
and rebuilt from their own definitions, then ``VACUUM ANALYZE``, as autovacuum would leave a
table this size). Nothing is due: the minute's steady state, whose cost should not depend on how
many posts went before. Each function is called ``--calls`` times and the median kept; the
ratio big/small must stay under 2 (the cost follows the due posts, not the table). The plans of
the big run are printed from ``EXPLAIN (ANALYZE)`` of the statements the functions send, with any problem (a sequential scan,
a row estimate more than 10x off, JIT) named.

    python -m bench.dispatch_scaling                 # about 3 minutes on a 2-core machine
    python -m bench.dispatch_scaling --big 200000 --histories cancelled
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, Engine, text  # noqa: E402

from bench.history import insert_future, insert_past, insert_users  # noqa: E402
from bench.plans import Plan, explained  # noqa: E402

#: Users the posts belong to.
DEFAULT_USERS = 1_000
#: Calls of each function per size; the median is reported.
DEFAULT_CALLS = 25
#: The largest big/small ratio that passes ("within 2x").
DEFAULT_MAX_RATIO = 2.0
HISTORY_LABELS = {"published": "published", "cancelled": "cancelled", "needs_review": "reviewed"}


def fast_load(conn: Connection, load: Callable[[Connection], None]) -> None:
    """Run ``load`` with the posts table's secondary indexes and constraints dropped, then
    rebuild them from their own definitions (faster than maintaining them row by row)."""
    constraints = conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'posts'::regclass AND contype IN ('u', 'f')")).all()
    indexes = conn.execute(text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'posts' AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = 'posts'::regclass)")).all()
    for name, _ in constraints:
        conn.execute(text(f'ALTER TABLE posts DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    load(conn)
    conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for _, definition in indexes:
        conn.execute(text(definition))
    for name, definition in constraints:
        conn.execute(text(f'ALTER TABLE posts ADD CONSTRAINT "{name}" {definition}'))


def build(url: str, *, future: int, past: int, history: str, now: datetime, users: int) -> float:
    """Fill a migrated database; return the seconds it took."""
    from app.db import make_engine

    started = time.monotonic()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            insert_users(conn, users, now)

            def load(c: Connection) -> None:
                insert_future(c, future, now, users)
                insert_past(c, past, history, now, users)

            fast_load(conn, load)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE posts"))
    finally:
        engine.dispose()
    return time.monotonic() - started


def median_ms(call: Callable[[], object], calls: int) -> float:
    call()  # warm the pool and the caches, as a long-running worker is
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(history: str, future: int, past: int, args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    from app.config import Settings
    from app.crypto import generate_key
    from app.migrate import upgrade
    from app.runtime import Runtime
    from app.workflows.dispatch import dispatch_due_posts
    from app.workflows.sweep import sweep_stuck_posts
    from tests.services import create_pg_database, drop_pg_database

    now = datetime.now(UTC)
    url = create_pg_database()
    try:
        upgrade(url)
        seconds = build(url, future=future, past=past, history=history, now=now, users=args.users)
        settings = Settings(database_url=url, token_encryption_keys=(generate_key(),))
        runtime = Runtime.from_settings(settings, clock=lambda: now)
        engine: Engine = runtime.session_factory.kw["bind"]
        try:
            dispatch = median_ms(lambda: dispatch_due_posts(runtime, now), args.calls)
            sweep = median_ms(lambda: sweep_stuck_posts(runtime, now), args.calls)
            with explained(engine) as seen:
                dispatch_due_posts(runtime, now)
            dispatch_plans = seen.plans
            with explained(engine) as seen:
                sweep_stuck_posts(runtime, now)
            sweep_plans = seen.plans
        finally:
            engine.dispose()
    finally:
        drop_pg_database(url)
    return {"history": history, "rows": future + past, "build_s": seconds, "dispatch_ms": dispatch,
            "sweep_ms": sweep, "plans": {"dispatch": dispatch_plans, "sweep": sweep_plans}}


def print_plans(name: str, plans: list[Plan]) -> list[str]:
    problems = []
    for plan in plans:
        first = " ".join(plan.statement.split())[:150]
        print(f"  {name}: {first}")
        print("\n".join("    " + line for line in plan.render().splitlines()))
        found = plan.problems()
        problems += [f"{name}: {p}" for p in found]
        print("    problems: " + ("; ".join(found) if found else "none"))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="future posts (and as many past) of the small run")
    parser.add_argument("--big", type=int, default=1_000_000, help="future posts (and as many past) of the big run")
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--histories", default="published,cancelled,needs_review",
                        help="comma-separated: published, cancelled, needs_review, mixed")
    args = parser.parse_args(argv)
    histories = [h.strip() for h in args.histories.split(",") if h.strip()]

    # The process's first measurement pays for imports and cold code paths: discard one.
    measure(histories[0], 100, 100, argparse.Namespace(**{**vars(args), "calls": 3}))
    rows = []
    problems: list[str] = []
    for history in histories:
        for size in (args.small, args.big):
            print(f"{HISTORY_LABELS.get(history, history)}: {size:,} future + {size:,} past ...", flush=True)
            result = measure(history, size, size, args)
            print(f"  built in {result['build_s']:.1f} s; dispatch {result['dispatch_ms']:.2f} ms, "
                  f"sweep {result['sweep_ms']:.2f} ms (median of {args.calls})", flush=True)
            rows.append(result)
            if size == args.big:
                for name, plans in result["plans"].items():
                    problems += print_plans(f"{history}/{name}", plans)

    print()
    print(f"{'history':<10} {'rows':>10} {'dispatch ms':>12} {'sweep ms':>9}")
    for r in rows:
        print(f"{HISTORY_LABELS.get(r['history'], r['history']):<10} {r['rows']:>10,} "
              f"{r['dispatch_ms']:>12.2f} {r['sweep_ms']:>9.2f}")
    ok = not problems
    print()
    for small, big in zip(rows[::2], rows[1::2], strict=True):
        for key in ("dispatch_ms", "sweep_ms"):
            ratio = big[key] / small[key]
            ok = ok and ratio <= DEFAULT_MAX_RATIO
            print(f"{HISTORY_LABELS.get(big['history'], big['history']):<10} {key[:-3]:<8} "
                  f"{big['rows']:,} / {small['rows']:,} rows: {ratio:.2f}x "
                  f"({'OK' if ratio <= DEFAULT_MAX_RATIO else 'OVER'} {DEFAULT_MAX_RATIO:g}x)")
    print(f"plan problems: {'; '.join(problems) if problems else 'none'}")
    print(f"checks: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
