"""Burst benchmark: N posts due at the same second across M accounts, through the real path.

Real users pick round posting times (09:00 in New York is one second for thousands of
accounts). This starts the Procfile's posting worker (``dramatiq actors.entrypoint -Q posting
--processes P --threads T``) on Redis and a throwaway PostgreSQL database, schedules N posts at
one second about 45 s ahead, sends the real minute tick (``dispatch_due_posts``, as Periodiq
does) and lets the workers publish through the real X client to the tests' fake X
(:mod:`tests.fakes.x`), which takes ``--latency-ms`` to answer each create. Then it prints the
lateness of the posts' arrival at X (p50, p99, the last), posts/s, and how many arrived early,
twice, or never.

    python -m bench.burst --posts 2000 --accounts 400 --latency-ms 150
    python -m bench.burst --images        # every post carries its account's library image
    python -m bench.burst --mix all   # the posts spread over X, LinkedIn, Bluesky and Mastodon
    BENCH_REDIS_URL=redis://127.0.0.1:6379/3 python -m bench.burst --posts 200   # another db (flushed)

With ``--images`` each account has an image in its library (local directory) and every post
carries it: the minute tick uploads them ahead (X's v2 media upload on the fake, once per
image and account), and the bench also prints when the last upload finished against the
burst's second, and how many creates named their media.

The platform calls alone bound the burst at N x latency / (P x PUBLISH_CONCURRENCY) seconds
(2,000 x 0.15 / (2 x 128) = 1.2 s); before posts travelled in batches, it was the threads: N x
latency / (P x T) = 9.4 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.procfile import add_worker_arguments, posting_worker, worker_env  # noqa: E402
from bench.stack import (  # noqa: E402
    REDIS_URL,
    connect_x_accounts,
    percentile,
    post_id_of,
    start_posting_workers,
    tear_down,
    wait_for_workers,
)

#: How far ahead of now the burst's second is: the tick claims posts due within two minutes.
LEAD = timedelta(seconds=45)
#: How long after the burst's second the bench waits for the last post at most.
GRACE = timedelta(seconds=90)
#: Our own posting limits per account, raised so the burst measures the pipeline, not them.
POSTS_PER_15_MIN = 10_000
POSTING_LIMITS = {"X_POSTS_PER_15_MIN": str(POSTS_PER_15_MIN), "LINKEDIN_POSTS_PER_DAY": "10000",
                  "BLUESKY_POSTS_PER_HOUR": "10000", "MASTODON_POSTS_PER_3_HOURS": "10000"}


def open_fakes(latency_s: float) -> dict:  # type: ignore[type-arg]
    """One fake per platform (keyed by its publisher's platform), each taking ``latency_s`` per
    create, with how to read a create request's text."""
    from app.providers.bluesky import BlueskyPublisher
    from app.providers.linkedin import LinkedInPublisher
    from app.providers.mastodon import MastodonPublisher
    from app.providers.x import XPublisher
    from tests.fakes.bluesky import FakeBluesky
    from tests.fakes.linkedin import FakeLinkedIn
    from tests.fakes.mastodon import FakeMastodon
    from tests.fakes.x import FakeX

    linkedin = FakeLinkedIn()
    linkedin.latency = lambda r: latency_s if (r.method, r.path) == ("POST", "/rest/posts") else 0.0  # type: ignore[method-assign]
    fakes = {
        XPublisher.platform: (FakeX(create_latency=latency_s), ("POST", "/2/tweets"),
                              lambda r: (r.json or {}).get("text", "")),
        # LinkedIn's little text escapes the "#" of "bench post #<id>".
        LinkedInPublisher.platform: (linkedin, ("POST", "/rest/posts"),
                                     lambda r: (r.json or {}).get("commentary", "").replace("\\", "")),
        BlueskyPublisher.platform: (FakeBluesky(create_latency=latency_s),
                                    ("POST", "/xrpc/com.atproto.repo.createRecord"),
                                    lambda r: ((r.json or {}).get("record") or {}).get("text", "")),
        MastodonPublisher.platform: (FakeMastodon(create_latency=latency_s), ("POST", "/api/v1/statuses"),
                                     lambda r: r.form.get("status", "")),
    }
    for fake, _, _ in fakes.values():
        fake.__enter__()
    return fakes


def connect_every_platform(runtime, fakes: dict, count: int, now: datetime) -> list[int]:  # type: ignore[no-untyped-def,type-arg]
    """``count`` users, each with an account on every platform's fake; their ids."""
    from app.providers.base import TokenSet
    from app.providers.bluesky import BlueskyPublisher
    from app.providers.linkedin import LinkedInPublisher
    from app.providers.mastodon import MastodonPublisher
    from app.providers.x import XPublisher
    from app.users import connect_account, create_user

    fx, fl, fb, fm = (fakes[p.platform][0] for p in (XPublisher, LinkedInPublisher, BlueskyPublisher,
                                                      MastodonPublisher))
    year = now + timedelta(days=365)
    users = []
    with runtime.session_factory() as session, session.begin():
        for i in range(count):
            email = f"mix{i}@example.com"
            users.append(create_user(session, email, {"enable_autonomous_mode": False}).id)
            connect_account(session, runtime.vault, email, XPublisher.platform,
                            TokenSet(fx.access_token, None, expires_at=year), external_id=fx.user_id, now=now)
            connect_account(session, runtime.vault, email, LinkedInPublisher.platform,
                            TokenSet(fl.access_token, None, expires_at=year), external_id=fl.member_urn, now=now)
            sky = fb.add_account(f"mix{i}.test", "pw")
            access, refresh = fb.session_for(sky.handle)
            connect_account(session, runtime.vault, email, BlueskyPublisher.platform,
                            TokenSet(access, refresh, expires_at=now + timedelta(hours=2)),
                            external_id=sky.did, service_url=fb.base_url, now=now)
            account_id, token = fm.add_account(f"mix{i}")
            connect_account(session, runtime.vault, email, MastodonPublisher.platform, TokenSet(token),
                            external_id=account_id, service_url=fm.base_url, now=now)
    return users


def run(args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    import redis
    from cryptography.fernet import Fernet
    from sqlalchemy import func, select

    from actors.messages import send_tick
    from app.broker import build_broker
    from app.config import Settings
    from app.migrate import upgrade
    from app.models import Post, PostStatus
    from app.providers.bluesky import BlueskyPublisher
    from app.providers.linkedin import LinkedInPublisher
    from app.providers.mastodon import MastodonPublisher
    from app.providers.x import XPublisher
    from app.runtime import Runtime
    from app.workflows.dispatch import DISPATCH_DUE_POSTS
    from tests.fakes.x import FakeX
    from tests.services import create_pg_database

    key = Fernet.generate_key().decode()
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=30)
    client.flushdb()
    mixed = args.mix == "all"
    fakes = open_fakes(args.latency_ms / 1000) if mixed else {}
    fake = fakes[XPublisher.platform][0] if mixed else FakeX(create_latency=args.latency_ms / 1000)
    if not mixed:
        fake.__enter__()
    db_url = create_pg_database()
    log_path = Path(tempfile.mkdtemp(prefix="bench-burst-")) / "workers.log"
    proc = None
    runtime = None
    try:
        upgrade(db_url)
        media_dir = Path(tempfile.mkdtemp(prefix="bench-burst-media-"))
        env = {**os.environ, "MEDIA_DIR": str(media_dir), "DATABASE_URL": db_url, "REDIS_URL": REDIS_URL, "TOKEN_ENCRYPTION_KEYS": key,
               "X_CLIENT_ID": "bench", "X_API_BASE_URL": fake.base_url,
               **POSTING_LIMITS,
               # The Procfile line's variables, so Settings here sees its PUBLISH_CONCURRENCY too.
               **worker_env(posting_worker(), args.threads, args.prefetch),
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("SENTRY_DSN", None)
        if mixed:
            linkedin = fakes[LinkedInPublisher.platform][0]
            env.update({"LINKEDIN_CLIENT_ID": linkedin.client_id, "LINKEDIN_CLIENT_SECRET": linkedin.client_secret,
                        "LINKEDIN_API_BASE_URL": linkedin.base_url, "LINKEDIN_OAUTH_BASE_URL": linkedin.base_url,
                        "BLUESKY_ENABLED": "true", "BLUESKY_PDS_URL": fakes[BlueskyPublisher.platform][0].base_url,
                        "MASTODON_ENABLED": "true"})
        settings = Settings.from_env(env)
        concurrency = settings.publish_concurrency
        runtime = Runtime.from_settings(settings)
        now = datetime.now(UTC)
        users = (connect_every_platform(runtime, fakes, args.accounts, now) if mixed
                 else connect_x_accounts(runtime, fake, args.accounts, "burst", now))
        platforms = list(fakes) if mixed else [XPublisher.platform]
        images: dict[int, int] = {}
        if args.images:
            from app.media.library import add_image
            from tests.media.images import image_bytes

            with runtime.session_factory() as session, session.begin():
                for n, user_id in enumerate(users):
                    images[user_id] = add_image(session, runtime.media_storage, user_id,
                                                image_bytes("JPEG", (1200, 675), color=f"#{n * 2654435761 % 0xFFFFFF:06x}"),
                                                alt_text=f"Bench card {n}").id

        proc = start_posting_workers(env, args.processes, args.threads, log_path, prefetch=args.prefetch)
        if not wait_for_workers(client, args.processes, 60):
            raise RuntimeError(f"workers did not start; see {log_path}")

        due = (datetime.now(UTC) + LEAD).replace(microsecond=0)
        with runtime.session_factory() as session, session.begin():
            # Post n goes to user n mod accounts on platform n mod platforms: with 4 platforms and
            # 400 users, every (user, platform) pair gets its share.
            rows = [Post(user_id=users[n % len(users)], platform=platforms[(n // len(users)) % len(platforms)],
                         text="", origin="manual", status=PostStatus.SCHEDULED, scheduled_at=due,
                         media_id=images.get(users[n % len(users)]))
                    for n in range(args.posts)]
            session.add_all(rows)
            session.flush()
            for post in rows:
                post.text = f"bench post #{post.id} burst at {due:%H:%M:%S}"
            ids = {post.id for post in rows}

        # The real minute tick, as Periodiq sends it: the worker claims the due posts and sends
        # one publish message each, to land at their second.
        broker = build_broker(settings)
        slot = datetime.now(UTC).replace(second=0, microsecond=0)
        send_tick(broker, DISPATCH_DUE_POSTS.name, slot)
        broker.close()

        deadline = due + GRACE
        terminal = {PostStatus.PUBLISHED, PostStatus.NEEDS_REVIEW, PostStatus.FAILED}
        while datetime.now(UTC) < deadline:
            with runtime.session_factory() as session:
                done = session.scalar(select(func.count()).select_from(Post).where(Post.status.in_(terminal)))
            if done == args.posts:
                break
            time.sleep(0.5)
        with runtime.session_factory() as session:
            statuses = dict(session.execute(select(Post.status, func.count()).group_by(Post.status)).all())

        readers = [(fk, route, text_of) for fk, route, text_of in fakes.values()] if mixed else [
            (fake, ("POST", "/2/tweets"), lambda r: (r.json or {}).get("text", ""))]
        first: dict[int, float] = {}
        sends: Counter[int] = Counter()
        for platform_fake, route, text_of in readers:
            for request in list(platform_fake.requests):
                if (request.method, request.path) != route:
                    continue
                pid = post_id_of(str(text_of(request)))
                if pid in ids:
                    sends[pid] += 1
                    first[pid] = min(first.get(pid, request.received_at), request.received_at)
        # A repeated create the platform recognised (Bluesky's record key, Mastodon's
        # Idempotency-Key) is not a second post: count what the platforms hold.
        held: Counter[int] = Counter()
        if mixed:
            held.update(post_id_of(r.value["text"]) for r in fakes[BlueskyPublisher.platform][0].posts())
            held.update(post_id_of(s.text) for s in fakes[MastodonPublisher.platform][0].statuses)
            for pid in list(sends):
                if pid in held:
                    sends[pid] = held[pid]
        lateness = [(first[pid] - due.timestamp()) * 1000 for pid in first]
        last_s = max(lateness) / 1000 if lateness else None
        # X's media calls (with --mix all the other platforms' uploads are on their own fakes).
        media_calls = [r for r in list(fake.requests) if r.path.startswith("/2/media")]
        with_media = sum(1 for r in list(fake.requests) if (r.method, r.path) == ("POST", "/2/tweets")
                         and ((r.json or {}).get("media") or {}).get("media_ids"))
        return {
            "posts": args.posts, "accounts": args.accounts, "latency_ms": args.latency_ms,
            "processes": args.processes, "threads": args.threads,
            "first_ms": min(lateness) if lateness else None,
            "p50_ms": percentile(lateness, 50) if lateness else None,
            "p99_ms": percentile(lateness, 99) if lateness else None,
            "last_s": last_s, "posts_per_s": len(first) / last_s if last_s else None,
            "early": sum(1 for x in lateness if x < 0), "duplicates": sum(1 for c in sends.values() if c > 1),
            "missing": len(ids - set(first)), "statuses": {str(k): v for k, v in statuses.items()},
            "call_bound_s": args.posts * args.latency_ms / 1000 / (args.processes * concurrency),
            "log": str(log_path), "mix": args.mix,
            "per_platform": dict(Counter(platforms[(n // len(users)) % len(platforms)] for n in range(args.posts))),
            "uploads": sum(1 for r in media_calls if r.path == "/2/media/upload/initialize"),
            "last_upload_vs_due_s": (max(r.received_at for r in media_calls) - due.timestamp()) if media_calls else None,
            "creates_with_media": with_media,
            "images": args.images,
        }
    finally:
        for other, _, _ in fakes.values():
            if other is not fake:
                other.__exit__(None, None, None)
        tear_down(proc, fake, runtime, db_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--latency-ms", type=float, default=150.0, help="the fake X's time per create")
    parser.add_argument("--images", action="store_true", help="every post carries its account's library image")
    parser.add_argument("--mix", choices=("x", "all"), default="x",
                        help="x: every post to the fake X; all: spread over every platform's fake")
    add_worker_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.posts, args.accounts, args.processes, args.threads) < 1:
        parser.error("--posts, --accounts, --processes and --threads must be at least 1")
    print(f"burst: {args.posts} posts due at one second across {args.accounts} accounts, fake X "
          f"{args.latency_ms:.0f} ms per create, {args.processes} processes x {args.threads} threads ...",
          flush=True)
    r = run(args)
    fmt = lambda v: "n/a" if v is None else f"{v:,.1f}"  # noqa: E731
    where = "the platforms" if r["mix"] == "all" else "X"
    print(f"lateness at {where}: first {fmt(r['first_ms'])} ms, p50 {fmt(r['p50_ms'])} ms, p99 {fmt(r['p99_ms'])} ms, last {fmt(r['last_s'])} s "
          f"(the calls alone bound it at {r['call_bound_s']:.1f} s)")
    print(f"throughput: {fmt(r['posts_per_s'])} posts/s; early {r['early']}, twice {r['duplicates']}, "
          f"missing {r['missing']}; statuses {r['statuses']}")
    if r["images"]:
        when = r["last_upload_vs_due_s"]
        print(f"images (X): {r['uploads']} uploads, the last media call {fmt(abs(when) if when is not None else None)} s "
              f"{'after' if when is not None and when > 0 else 'before'} the second; "
              f"{r['creates_with_media']} creates on X named their media")
    print(f"mix {r['mix']}: {r['per_platform']}; worker log: {r['log']}")
    return 0 if r["missing"] == 0 and r["duplicates"] == 0 and r["early"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
