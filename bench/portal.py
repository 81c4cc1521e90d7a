"""The portal's pages under load: p95 per page for a user with 5,000 posts among 1,000,000.

A throwaway PostgreSQL database migrated to head is filled inside PostgreSQL (bench/history.py's
``INSERT ... SELECT generate_series``, indexes rebuilt after the load, ``VACUUM ANALYZE``):
1,000 users share 995,000 posts (scheduled tomorrow and a mixed history), and the bench user
has 5,000 of their own (scheduled over the next month, waiting for approval, published,
cancelled). The Procfile's ``web`` line is started as written (gunicorn, the portal at ``/`` and
the admin under ``/admin``); ``--clients`` (8) concurrent clients, each signed in through its
own one-time link and in its own process, request every page ``--rounds`` times after one
discarded warm-up round.
The pages are the portal's GET routes found in its URL map (so a page added later is measured
too), plus one post's page. The p95 of each page is printed against the target (100 ms), then
``EXPLAIN (ANALYZE)`` of every query the slowest page sends.

    python -m bench.portal                     # about 2 minutes on a 2-core machine
    python -m bench.portal --posts 200000 --rounds 10

``--dashboard`` measures the dashboard instead, one page per period (``/?days=7``, 30, 90), for a
user with two years of daily posts on two platforms (30 metric snapshots each) among the
million, against its own target (150 ms), and prints every query plan of each period with what
is wrong in it (a sequential scan of a table read by the page, an estimate far off).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import Connection, text  # noqa: E402

from app.platforms import KNOWN_PLATFORMS  # noqa: E402
from bench.dispatch_scaling import fast_load  # noqa: E402
from bench.history import insert_future, insert_past, insert_users  # noqa: E402
from bench.plans import explained  # noqa: E402

#: Posts in the database, the bench user's included.
DEFAULT_POSTS = 1_000_000
#: The bench user's own posts.
DEFAULT_USER_POSTS = 5_000
#: Other users sharing the rest.
DEFAULT_USERS = 1_000
#: Concurrent clients, each with its own session.
DEFAULT_CLIENTS = 8
#: Measured rounds over every page per client (after one warm-up round).
DEFAULT_ROUNDS = 25
#: The target: the p95 of every page at most this many milliseconds.
DEFAULT_TARGET_P95_MS = 100.0
#: The secret the bench's server signs with (a throwaway database, a throwaway key).
SECRET_KEY = "bench-portal-secret"
PROCFILE = ROOT / "Procfile"

#: The bench user's posts, by ``g`` (1..count): a month scheduled ahead, some waiting for
#: approval, the rest history (published with an id on the platform, or cancelled).
_USER_POSTS = """
INSERT INTO posts (user_id, platform, text, origin, status, scheduled_at, published_at, external_id,
                   attempts, review_reason, created_at, updated_at)
SELECT :user_id, CASE WHEN g % 2 = 0 THEN :first ELSE :second END, 'bench post ' || g, 'autonomous',
       s.status, s.at, CASE WHEN s.status = 'published' THEN s.at + interval '2 seconds' END,
       CASE WHEN s.status = 'published' THEN 'ext-u' || g END, 0,
       CASE WHEN s.status = 'needs_review' THEN 'approval' END, :now, :now
FROM generate_series(1, :count) g,
     LATERAL (SELECT CASE WHEN g <= 300 THEN 'scheduled' WHEN g <= 340 THEN 'needs_review'
                          WHEN g % 9 = 0 THEN 'cancelled' ELSE 'published' END::varchar AS status,
                     CASE WHEN g <= 340 THEN CAST(:now AS timestamptz) + g * interval '2 hours'
                          ELSE CAST(:now AS timestamptz) - g * interval '1 hour' END AS at) s
"""

#: ``--dashboard``: the bench user's history, two posts a day (X at 09:00 and LinkedIn at 17:00
#: Paris time, give or take) for :data:`DASHBOARD_DAYS` days, published with figures; a week ahead scheduled.
DASHBOARD_DAYS = 730
#: ``--dashboard``: metric snapshots per published post.
DASHBOARD_SNAPSHOTS = 30
#: ``--dashboard``: the target p95 of each period's page, in milliseconds.
DASHBOARD_TARGET_P95_MS = 150.0
#: ``--dashboard``: the periods measured.
DASHBOARD_PAGES = ("/?days=7", "/?days=30", "/?days=90")

_DASHBOARD_POSTS = """
INSERT INTO posts (user_id, platform, text, origin, status, scheduled_at, slot_at, published_at, external_id,
                   attempts, impressions, likes, shares, comments, engagement_rate, metrics_updated_at,
                   created_at, updated_at)
SELECT :user_id, p.platform, 'dashboard post ' || d || ' ' || p.platform, 'autonomous',
       CASE WHEN d > 0 THEN 'published' ELSE 'scheduled' END, s.at, s.at,
       CASE WHEN d > 0 THEN s.at + (d % 90) * interval '1 second' END,
       CASE WHEN d > 0 THEN 'dash-' || p.platform || '-' || d END, 0,
       CASE WHEN d > 0 THEN 200 + (d * 37) % 4000 END, CASE WHEN d > 0 THEN (d * 7) % 60 END,
       CASE WHEN d > 0 THEN d % 5 END, CASE WHEN d > 0 THEN d % 3 END, NULL,
       CASE WHEN d > 0 THEN CAST(:now AS timestamptz) END, :now, :now
FROM generate_series(-6, :days) d,
     (VALUES (CAST(:first AS varchar), interval '8 hours'), (:second, interval '16 hours')) AS p(platform, hour),
     LATERAL (SELECT date_trunc('day', CAST(:now AS timestamptz)) - d * interval '1 day' + p.hour
                     + (d % 4) * interval '1 hour' AS at) s
"""

_DASHBOARD_SNAPSHOTS = """
INSERT INTO metric_snapshots (post_id, age, taken_at, impressions, likes, shares, comments, engagement_rate,
                              simulated)
SELECT p.id, 'd' || lpad(n::text, 2, '0'), p.published_at + n * interval '1 day',
       p.impressions * n / :snapshots, p.likes * n / :snapshots, p.shares, p.comments, 0.0, false
FROM posts p, generate_series(1, :snapshots) n
WHERE p.user_id = :user_id AND p.status = 'published'
"""

#: ``--dashboard``: every user's two accounts and a month of notifications, so the dashboard's
#: reads of those tables are planned on tables of a deployment's shape, not on empty ones.
_DASHBOARD_NEIGHBOURS = ("""
INSERT INTO platform_accounts (user_id, platform, handle, access_token_encrypted, status, created_at, updated_at)
SELECT u.id, p.platform, 'h' || u.id, 'not-a-token', 'active', :now, :now
FROM users u, (VALUES (CAST(:first AS varchar)), (:second)) AS p(platform)
""", """
INSERT INTO notifications (user_id, kind, severity, subject, body, created_at, email_delivery, read_at)
SELECT u.id, 'generation_failed', 'warning', 'Nothing generated', 'The writer failed.',
       CAST(:now AS timestamptz) - g * interval '1 day', 'now', CASE WHEN g > 2 THEN CAST(:now AS timestamptz) END
FROM users u, generate_series(1, 30) g
""")

_SETTINGS = """
INSERT INTO user_settings (user_id, enable_autonomous_mode, timezone, preferred_platforms, content_frequency,
                           posting_times, brand_voice, creativity_level, topics, language, country,
                           require_approval, updated_at)
SELECT id, true, 'Europe/Paris', :platforms, 5,
       :posting_times, 'professional', 0.7, '["python"]', 'en', 'us',
       id = :user_id, :now
FROM users
"""

#: The bench user's two platforms: the registry's first two (X and LinkedIn), named by the registry.
_TWO_PLATFORMS = {"first": KNOWN_PLATFORMS[0], "second": KNOWN_PLATFORMS[1]}
_SETTINGS_VALUES = {
    "platforms": json.dumps(list(_TWO_PLATFORMS.values())),
    "posting_times": json.dumps({_TWO_PLATFORMS["first"]: ["09:00"], _TWO_PLATFORMS["second"]: ["10:00"]}),
}


def build(url: str, *, posts: int, user_posts: int, users: int, now: datetime, dashboard: bool = False) -> int:
    """Fill a migrated database; the bench user's id. With ``dashboard``, the bench user's posts
    are the dashboard's two years of daily history (``user_posts`` is ignored) with snapshots."""
    if dashboard:
        user_posts = 2 * (DASHBOARD_DAYS + 7)
    from app.db import make_engine

    engine = make_engine(url)
    user_id = users + 1
    rest = posts - user_posts
    try:
        with engine.begin() as conn:
            insert_users(conn, users, now)
            conn.execute(text("INSERT INTO users (email, created_at) VALUES ('bench@example.com', :now)"),
                         {"now": now})
            conn.execute(text(_SETTINGS), {"user_id": user_id, "now": now, **_SETTINGS_VALUES})

            def load(c: Connection) -> None:
                insert_future(c, rest // 2, now, users)
                insert_past(c, rest - rest // 2, "mixed", now, users)
                if dashboard:
                    c.execute(text(_DASHBOARD_POSTS), {"user_id": user_id, "days": DASHBOARD_DAYS, "now": now,
                                                       **_TWO_PLATFORMS})
                else:
                    c.execute(text(_USER_POSTS), {"user_id": user_id, "count": user_posts, "now": now,
                                                  **_TWO_PLATFORMS})

            fast_load(conn, load)
            if dashboard:
                conn.execute(text(_DASHBOARD_SNAPSHOTS), {"user_id": user_id, "snapshots": DASHBOARD_SNAPSHOTS})
                for statement in _DASHBOARD_NEIGHBOURS:
                    conn.execute(text(statement), {"now": now, **_TWO_PLATFORMS})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return user_id


def web_command(procfile: Path = PROCFILE) -> str:
    """The Procfile's ``web`` line, as written."""
    for line in procfile.read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"no web line in {procfile}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(url: str, port: int, access_log: Path) -> subprocess.Popen[bytes]:
    """The Procfile's web line in its own process group, on ``url``; returns once /healthz answers.

    Gunicorn's own access log (added through ``GUNICORN_CMD_ARGS``, the line itself unchanged)
    records each request's time inside a worker, so the report can tell the server's work from
    the wait for a free worker and for the CPU.
    """
    from app.crypto import generate_key

    env = {**os.environ, "PORT": str(port), "DATABASE_URL": url, "SECRET_KEY": SECRET_KEY,
           "TOKEN_ENCRYPTION_KEYS": generate_key(), "SESSION_COOKIE_SECURE": "false",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
           "GUNICORN_CMD_ARGS": f"--access-logfile {access_log} --access-logformat '%(U)s?%(q)s %(s)s %(D)s'"}
    env.pop("REDIS_URL", None)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    process = subprocess.Popen(["bash", "-c", web_command()], env=env, cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the web process exited: " + (process.stderr.read() or b"").decode()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(process)
    raise SystemExit("the web process did not answer /healthz within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the process group this bench started (gunicorn's master and its workers)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def signed_in_client(base: str, url: str, email: str) -> httpx.Client:
    """An HTTP client signed in through its own one-time link (as a user would be)."""
    from app.clock import utcnow
    from app.config import Settings
    from app.db import make_engine, make_session_factory
    from app.signin import create_link

    engine = make_engine(url)
    with make_session_factory(engine)() as session, session.begin():
        token = create_link(session, Settings(database_url=url, secret_key=SECRET_KEY), email,
                            now=utcnow(), created_by="bench")
    engine.dispose()
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get(f"/signin/{token}")
    match = _CSRF.search(page.text)
    assert match, "no form on the sign-in link page"
    response = client.post(f"/signin/{token}", data={"csrf_token": match.group(1)})
    if response.status_code != 302:
        raise SystemExit(f"sign-in failed: {response.status_code}")
    return client


def pages(url: str, user_id: int) -> list[str]:
    """The portal's GET pages without arguments (from its URL map), and one post's page."""
    from app.config import Settings
    from portal import create_app

    app = create_app(Settings(database_url=url, secret_key=SECRET_KEY))
    skip = {"static", "home.healthz", "auth.signin"}
    found = sorted(rule.rule for rule in app.url_map.iter_rules()
                   if "GET" in (rule.methods or ()) and not rule.arguments and rule.endpoint not in skip)
    app.extensions["portal"].engine.dispose()
    from app.db import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        post_id = conn.scalar(text("SELECT id FROM posts WHERE user_id = :u AND status = 'needs_review' LIMIT 1"),
                              {"u": user_id})
    engine.dispose()
    return [*found, f"/posts/{post_id}"]


def _client_run(base: str, url: str, page_list: list[str], rounds: int, start: Any, out: Any) -> None:
    """One client process: sign in, warm up, wait for the others, then time every request."""
    client = signed_in_client(base, url, "bench@example.com")
    for page in page_list:  # warm-up, discarded
        client.get(page)
    start.wait()
    timings: list[tuple[str, float, int]] = []
    for _ in range(rounds):
        for page in page_list:
            began = time.perf_counter()
            response = client.get(page)
            timings.append((page, (time.perf_counter() - began) * 1000, response.status_code))
    client.close()
    out.put(timings)


def load(base: str, url: str, page_list: list[str], clients: int, rounds: int) -> dict[str, list[float]]:
    """``clients`` processes (each its own client, as separate browsers are: no shared GIL),
    each signed in, each requesting every page ``rounds`` times."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(clients)
    out = context.Queue()
    workers = [context.Process(target=_client_run, args=(base, url, page_list, rounds, start, out))
               for _ in range(clients)]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=900) for _ in workers]
    for worker in workers:
        worker.join()
    timings: dict[str, list[float]] = {page: [] for page in page_list}
    errors = [f"{page}: {status}" for result in results for page, _, status in result if status != 200]
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[:3]}")
    for result in results:
        for page, elapsed_ms, _ in result:
            timings[page].append(elapsed_ms)
    return timings


def server_times(access_log: Path, page_list: list[str]) -> dict[str, list[float]]:
    """Milliseconds each page's requests spent inside a gunicorn worker (its access log's %(D)s)."""
    found: dict[str, list[float]] = {page: [] for page in page_list}
    for line in access_log.read_text().splitlines():
        path, status, micros = (line.strip("'").split() + ["", "", ""])[:3]
        path = path.rstrip("?")  # the query string is logged after a "?", empty for most pages
        key = path if path in found else path + "/" if path + "/" in found else None
        if key is not None and status == "200" and micros.isdigit():
            found[key].append(int(micros) / 1000)
    return found


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def print_plans(url: str, page: str, *, tables: tuple[str, ...] = ("posts",)) -> bool:
    """``EXPLAIN (ANALYZE)`` of every query ``page`` sends, signed in as the bench user, with what
    is wrong in each; whether every plan read ``tables`` through an index (no sequential scan)."""
    from werkzeug.test import Client

    from app.config import Settings
    from portal import create_app

    app = create_app(Settings(database_url=url, secret_key=SECRET_KEY, session_cookie_secure=False))
    client = Client(app)
    from app.clock import utcnow
    from app.signin import create_link

    # The in-process client signs in through the same link path as the HTTP clients.
    with app.extensions["portal"].session_factory() as session, session.begin():
        token = create_link(session, app.extensions["portal"].settings, "bench@example.com", now=utcnow(),
                            created_by="bench")
    form = client.get(f"/signin/{token}").get_data(as_text=True)
    match = _CSRF.search(form)
    assert match
    client.post(f"/signin/{token}", data={"csrf_token": match.group(1)})
    read = tuple(dict.fromkeys(("posts", "users", "user_sessions", "user_settings", *tables)))
    with explained(app.extensions["portal"].engine, tables=read) as out:
        response = client.get(page)
    assert response.status_code == 200, response.status_code
    print(f"\nQuery plans of {page} ({len(out.plans)} queries):")
    clean = True
    for plan in out.plans:
        print("  " + " ".join(plan.statement.split())[:160])
        print("\n".join("    " + line for line in plan.render().splitlines()))
        found = plan.problems(tables=tables)
        clean &= not any("no index" in problem for problem in found)
        print("    problems: " + ("; ".join(found) if found else "none"))
    app.extensions["portal"].engine.dispose()
    return clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=DEFAULT_POSTS, help="posts in the database")
    parser.add_argument("--user-posts", type=int, default=DEFAULT_USER_POSTS, help="the bench user's posts")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="other users")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--target-ms", type=float, default=None,
                        help=f"p95 target (default {DEFAULT_TARGET_P95_MS:g}, {DASHBOARD_TARGET_P95_MS:g} with --dashboard)")
    parser.add_argument("--dashboard", action="store_true",
                        help="measure the dashboard's periods for a user with two years of daily posts")
    args = parser.parse_args(argv)
    if args.target_ms is None:
        args.target_ms = DASHBOARD_TARGET_P95_MS if args.dashboard else DEFAULT_TARGET_P95_MS

    from app.migrate import upgrade
    from tests.services import create_pg_database, drop_pg_database

    url = create_pg_database()
    process = None
    try:
        upgrade(url)
        started = time.monotonic()
        user_id = build(url, posts=args.posts, user_posts=args.user_posts, users=args.users,
                        now=datetime.now(UTC), dashboard=args.dashboard)
        mine = 2 * (DASHBOARD_DAYS + 7) if args.dashboard else args.user_posts
        print(f"built {args.posts:,} posts ({mine:,} of the bench user"
              + (f", {DASHBOARD_SNAPSHOTS} metric snapshots of each published one" if args.dashboard else "")
              + f") in {time.monotonic() - started:.1f} s", flush=True)
        port = free_port()
        access_log = Path(tempfile.mkdtemp(prefix="bench-portal-")) / "access.log"
        process = start_web(url, port, access_log)
        print(f"web: {web_command()}  (PORT={port})", flush=True)
        page_list = list(DASHBOARD_PAGES) if args.dashboard else pages(url, user_id)
        load_before = os.getloadavg()[0]
        timings = load(f"http://127.0.0.1:{port}", url, page_list, args.clients, args.rounds)
        load_after = os.getloadavg()[0]
        stop(process)
        process = None

        # The machine's load matters: the figures are wall-clock times, queueing included.
        print(f"\n{args.clients} clients x {args.rounds} rounds on {os.cpu_count()} CPUs, load average "
              f"{load_before:.1f} before / {load_after:.1f} after; milliseconds per request")
        served = server_times(access_log, page_list)
        print(f"{'page':<28} {'requests':>8} {'median':>8} {'p95':>8} {'max':>8} {'in worker p95':>14}"
              f"  target p95 <= {args.target_ms:g}")
        worst = ("", 0.0)
        failed = False
        for page, values in timings.items():
            page_p95 = p95(values)
            ok = page_p95 <= args.target_ms
            failed |= not ok
            print(f"{page:<28} {len(values):>8} {statistics.median(values):>8.1f} {page_p95:>8.1f} "
                  f"{max(values):>8.1f} {p95(served[page]) if len(served[page]) > 1 else float('nan'):>14.1f}"
                  f"  {'OK' if ok else 'OVER'}")
            if page_p95 > worst[1]:
                worst = (page, page_p95)
        print("(in worker: gunicorn's own time for the request, without the wait for a free worker)")
        if args.dashboard:
            # provider_holds has a row per paused provider (a handful): a sequential scan is its plan.
            tables = ("posts", "platform_accounts", "notifications", "user_settings")
            for page in page_list:
                failed |= not print_plans(url, page, tables=tables)
        else:
            print_plans(url, worst[0])
        return 1 if failed else 0
    finally:
        if process is not None:
            stop(process)
        drop_pg_database(url)


if __name__ == "__main__":
    raise SystemExit(main())
