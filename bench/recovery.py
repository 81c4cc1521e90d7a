"""Recovery benchmark: how late do posts go out after a crash, a Redis loss, a scheduler outage?

Everything real and at production cadence: a throwaway PostgreSQL database, Redis, ``periodiq
actors.entrypoint`` firing the minute job, ``dramatiq actors.entrypoint -Q posting`` workers
(which run the minute job too: it is on the posting queue), default graces
(``MESSAGE_GRACE_SECONDS`` 10, ``WORKER_SILENCE_SECONDS`` 15, Dramatiq's heartbeat timeout 60 s)
and the test suite's fake X (tests/fakes/x.py, real sockets) holding every create 2 s.

Scenarios (each on fresh state; ``--scenario`` runs one):

* ``sigkill``: 20 posts due within 2.5 minutes; the posting worker is SIGKILLed 4 times
  mid-publish (X holds the create) and restarted each time.
* ``flushdb``: FLUSHDB of the broker's Redis db right after the minute tick claimed 10 posts
  (due 70-115 s after they are scheduled, so some fall due before the next tick).
* ``flushdb-and-worker``: the same, 15 s before the first post's time, with the posting worker
  SIGKILLed at once (a live worker keeps the delayed messages it fetched in memory and
  re-enqueues them at their time, so a flush alone loses only those no worker had fetched).
* ``sigkill-media``: 6 posts, each with the same library image, due within a minute; the posting
  worker is SIGKILLed right after the image's upload was recorded (before any create), and
  again while a create is held by X: one tweet per post, each carrying the image, and the image
  uploaded and recorded once.
* ``claim-no-send``: a tick claims 5 posts and dies before sending (its intents are dropped).
* ``schedulers``: two schedulers at once, then both down 3 minutes while posts fall due, then
  one back; and SIGTERM of the posting worker while a message waits for its second.
* ``sigkill-open``: for Bluesky and for Mastodon (tests/fakes/bluesky.py, mastodon.py, holding
  each create 2 s after processing it), the posting worker SIGKILLed right after a create
  request left, twice each over 6 posts: each post must exist once on the fake (the record
  key, the Idempotency-Key) and be recorded once with the platform's own creation time.

For each: every post published exactly once (tweets counted on the fake), lateness (recorded
publish time minus scheduled time), recorded time against X's own ``created_at``, and what was
left in queued / publishing / review.

    python -m bench.recovery --redis-url redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.queues import Queue  # noqa: E402
from app.redis_layout import heartbeats  # noqa: E402
from tests.workers import wait_for  # noqa: E402 - the tests' bounded poll

#: How long the fake X holds each create before answering, in seconds.
HOLD = 2.0
#: The most a post may be late after any crash or Redis loss, in seconds.
BOUND = 90.0


@dataclass
class Stack:
    """A database, a Redis db, a fake X, and the processes of one scenario."""

    env: dict[str, str]
    runtime: Any
    fx: Any
    client: Any
    open_fakes: tuple[Any, Any]
    logs: Path
    user_id: int
    workers: list[subprocess.Popen] = field(default_factory=list)  # type: ignore[type-arg]
    schedulers: list[subprocess.Popen] = field(default_factory=list)  # type: ignore[type-arg]
    started: int = 0

    def spawn(self, *command: str) -> subprocess.Popen:  # type: ignore[type-arg]
        self.started += 1
        log = (self.logs / f"{command[0]}-{self.started}.log").open("ab")
        try:
            # periodiq has no ``python -m`` entry: its console script sits beside the interpreter.
            argv = ([str(Path(sys.executable).parent / "periodiq"), *command[1:]] if command[0] == "periodiq"
                    else [sys.executable, "-m", *command])
            return subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=log,
                                    start_new_session=True)
        finally:
            log.close()

    def start_worker(self) -> subprocess.Popen:  # type: ignore[type-arg]
        since = time.time() * 1000
        worker = self.spawn("dramatiq", "actors.entrypoint", "-Q", Queue.POSTING, "--processes", "1",
                            "--threads", "8")
        self.workers.append(worker)
        wait_for(lambda: any(beat >= since for beat in heartbeats(self.client).values()), 30)
        return worker

    def start_scheduler(self) -> subprocess.Popen:  # type: ignore[type-arg]
        scheduler = self.spawn("periodiq", "actors.entrypoint")
        self.schedulers.append(scheduler)
        return scheduler

    def stop_all(self) -> None:
        for process in [*self.workers, *self.schedulers]:
            stop(process, signal.SIGTERM, group=True)

    def schedule(self, at: datetime, text: str, platform: str | None = None) -> int:
        from app import posts
        from app.models import User
        from app.providers.x import XPublisher

        with self.runtime.session_factory() as session, session.begin():
            user = session.get(User, self.user_id)
            return posts.create_one_off(session, user, platform or XPublisher.platform, at, text,
                                        now=self.runtime.now()).id

    def rows(self, ids: list[int]) -> list[Any]:
        from sqlalchemy import select

        from app.models import Post

        with self.runtime.session_factory() as session:
            rows = list(session.scalars(select(Post).where(Post.id.in_(ids)).order_by(Post.id)))
            session.expunge_all()
            return rows

    def done(self, ids: list[int]) -> bool:
        from app.models import PostStatus

        return all(p.status in (PostStatus.PUBLISHED, PostStatus.NEEDS_REVIEW) for p in self.rows(ids))

    def audit(self, ids: list[int], action: str) -> int:
        from sqlalchemy import func, select

        from app.models import AuditLog

        with self.runtime.session_factory() as session:
            return session.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.post_id.in_(ids), AuditLog.action == action)) or 0


def stop(process: subprocess.Popen, sig: int, *, group: bool = False) -> None:  # type: ignore[type-arg]
    if process.poll() is None:
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)



def build_stack(redis_url: str, logs: Path, fx: Any, fl: Any, fb: Any, fm: Any) -> tuple[Stack, Callable[[], None]]:
    import redis

    from app.config import Settings
    from app.crypto import generate_key
    from app.providers.base import TokenSet
    from app.providers.bluesky import BlueskyPublisher
    from app.providers.mastodon import MastodonPublisher
    from app.providers.x import XPublisher
    from app.runtime import Runtime
    from app.users import connect_account, create_user
    from tests.services import create_pg_database, drop_pg_database

    db_url = create_pg_database()
    from app.migrate import upgrade

    upgrade(db_url)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("X_", "LINKEDIN_", "OPENAI_", "SERPER_", "SENTRY_", "REDIS_", "MESSAGE_",
                                   "WORKER_", "BLUESKY_", "MASTODON_"))}
    env.update({"MEDIA_DIR": str(logs / "media"), "DATABASE_URL": db_url, "REDIS_URL": redis_url, "TOKEN_ENCRYPTION_KEYS": generate_key(),
                "X_CLIENT_ID": fx.client_id, "X_API_BASE_URL": fx.base_url,
                "LINKEDIN_CLIENT_ID": fl.client_id, "LINKEDIN_CLIENT_SECRET": fl.client_secret,
                "LINKEDIN_API_BASE_URL": fl.base_url, "LINKEDIN_OAUTH_BASE_URL": fl.base_url,
                "BLUESKY_ENABLED": "true", "BLUESKY_PDS_URL": fb.base_url, "MASTODON_ENABLED": "true",
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    runtime = Runtime.from_settings(Settings.from_env(env))
    with runtime.session_factory() as session, session.begin():
        user = create_user(session, "bench@example.com", {"timezone": "UTC"})
        connect_account(session, runtime.vault, "bench@example.com", XPublisher.platform,
                        TokenSet(fx.access_token, fx.refresh_token, expires_at=runtime.now() + timedelta(hours=2)),
                        external_id=fx.user_id)
        access, refresh = fb.session_for(fb.account.handle)
        connect_account(session, runtime.vault, "bench@example.com", BlueskyPublisher.platform,
                        TokenSet(access, refresh, expires_at=runtime.now() + timedelta(hours=2)),
                        external_id=fb.account.did, service_url=fb.base_url)
        connect_account(session, runtime.vault, "bench@example.com", MastodonPublisher.platform,
                        TokenSet(fm.access_token), external_id=fm.account_id, service_url=fm.base_url)
        user_id = user.id
    stack = Stack(env, runtime, fx, client, (fb, fm), logs, user_id)

    def cleanup() -> None:
        stack.stop_all()
        client.flushdb()
        client.close()
        from app.db import get_engine

        get_engine(db_url).dispose()
        drop_pg_database(db_url)

    return stack, cleanup


def report(name: str, stack: Stack, ids: list[int], *, extra: str = "",
           late_from: datetime | None = None) -> dict[str, Any]:
    """Print and return the scenario's figures. ``late_from``: judge the 90 s bound from this
    instant (a scheduler's return) rather than from each post's own time."""
    from app.models import PostStatus

    rows = stack.rows(ids)
    tweets = {t.id: t for t in stack.fx.posts}
    texts = [t.text for t in stack.fx.posts]
    mine = {p.text for p in rows}
    duplicates = sum(1 for text in mine if texts.count(text) > 1)
    missing = sum(1 for text in mine if texts.count(text) == 0)
    lateness, drift = [], []
    for post in rows:
        if post.status == PostStatus.PUBLISHED and post.published_at is not None:
            lateness.append((post.published_at - post.scheduled_at).total_seconds())
            tweet = tweets.get(post.external_id)
            if tweet is not None:
                drift.append((post.published_at - tweet.created_at).total_seconds())
    left = {s: sum(1 for p in rows if p.status == s) for s in
            (PostStatus.QUEUED, PostStatus.PUBLISHING, PostStatus.NEEDS_REVIEW, PostStatus.SCHEDULED)}
    result = {"scenario": name, "posts": len(ids), "published": len(lateness), "duplicates": duplicates,
              "missing": missing, "max_late_s": round(max(lateness), 1) if lateness else None,
              "mean_late_s": round(sum(lateness) / len(lateness), 1) if lateness else None,
              "recorded_minus_created_s": (round(min(drift), 1), round(max(drift), 1)) if drift else None,
              "reconciled": stack.audit(ids, "post.reconciled"), "resent": stack.audit(ids, "post.requeued"),
              "left": {str(k): v for k, v in left.items() if v}}
    judged = lateness if late_from is None else [
        (p.published_at - late_from).total_seconds() for p in rows if p.published_at is not None]
    ok = (duplicates == 0 and missing == 0 and len(lateness) == len(ids)
          and (max(judged) if judged else 0) <= BOUND and not result["left"])
    print(f"{'OK ' if ok else 'BAD'} {name}: {result}{' ' + extra if extra else ''}", flush=True)
    return result


# -- scenarios ------------------------------------------------------------------------------


def next_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def scenario_sigkill(stack: Stack) -> None:
    now = stack.runtime.now()
    start = next_minute(now) + timedelta(seconds=20)
    ids = [stack.schedule(start + timedelta(seconds=7.5 * i), f"bench sigkill post {i}") for i in range(20)]
    for _ in range(60):
        stack.fx.hang_next(path="/2/tweets", seconds=HOLD)
    worker = stack.start_worker()
    stack.start_scheduler()
    kills = []
    for nth in (2, 7, 12, 16):
        wait_for(lambda n=nth: len(stack.fx.posts) >= n, 240)
        time.sleep(0.5)  # X holds the answer: the publish is in flight
        stop(worker, signal.SIGKILL, group=True)
        kills.append(stack.runtime.now())
        worker = stack.start_worker()
    wait_for(lambda: stack.done(ids), 240, interval=0.5)
    report("sigkill x4 over 20 posts", stack, ids, extra=f"kills at {[k.strftime('%H:%M:%S') for k in kills]}")


def scenario_flushdb(stack: Stack, *, with_worker: bool = False) -> None:
    from app.models import PostStatus

    # One tick claims them all; the flush right after it loses the messages of posts due before
    # the next tick, which re-sends them.
    now = stack.runtime.now()
    start = now + timedelta(seconds=70)
    ids = [stack.schedule(start + timedelta(seconds=5 * i), f"bench flushdb post {i}") for i in range(10)]
    worker = stack.start_worker()
    stack.start_scheduler()
    # Right after the tick that claimed the last of them (none is due yet: the first is 70 s out).
    assert wait_for(lambda: all(p.status != PostStatus.SCHEDULED for p in stack.rows(ids)), 150, interval=0.05)
    assert all(p.status == PostStatus.QUEUED for p in stack.rows(ids))
    if with_worker:
        # The worst moment: the first post 15 s from its time, its message long sent.
        wait_for(lambda: stack.runtime.now() >= start - timedelta(seconds=15), 120, interval=0.05)
    stack.client.flushdb()
    flushed = stack.runtime.now()
    if with_worker:
        # The worker held the delayed messages in memory (they would survive a flush): lose them too.
        stop(worker, signal.SIGKILL, group=True)
        stack.start_worker()
    wait_for(lambda: stack.done(ids), 240, interval=0.5)
    name = "flushdb and worker SIGKILL" if with_worker else "flushdb"
    report(f"{name} after the claim of 10", stack, ids, extra=f"flushed at {flushed:%H:%M:%S}")


def scenario_flushdb_and_worker(stack: Stack) -> None:
    scenario_flushdb(stack, with_worker=True)


def scenario_claim_no_send(stack: Stack) -> None:
    from app.intents import PublishPosts
    from app.workflows.dispatch import DISPATCH_DUE_POSTS
    from app.workflows.ticks import run_tick

    now = stack.runtime.now()
    ids = [stack.schedule(now + timedelta(seconds=20 + 3 * i), f"bench claim-no-send post {i}") for i in range(5)]
    crashed = run_tick(stack.runtime, DISPATCH_DUE_POSTS.name, now.replace(microsecond=0), trigger="periodic",
                       message_id="crashed-tick")
    dropped = [i for i in crashed.intents if isinstance(i, PublishPosts)]
    stack.start_worker()
    stack.start_scheduler()
    wait_for(lambda: stack.done(ids), 240, interval=0.5)
    report("claim without send", stack, ids, extra=f"{len(dropped)} intents dropped")


def scenario_schedulers(stack: Stack) -> None:
    from sqlalchemy import func, select

    from app.models import JobRun

    now = stack.runtime.now()
    worker = stack.start_worker()
    first, second = stack.start_scheduler(), stack.start_scheduler()
    both = [stack.schedule(next_minute(now) + timedelta(seconds=10 + 5 * i), f"bench two schedulers {i}")
            for i in range(6)]
    wait_for(lambda: stack.done(both), 240, interval=0.5)
    report("two schedulers", stack, both)

    stop(first, signal.SIGTERM, group=True)
    stop(second, signal.SIGTERM, group=True)
    down_at = stack.runtime.now()
    during = [stack.schedule(down_at + timedelta(seconds=30 + 30 * i), f"bench scheduler down {i}")
              for i in range(5)]
    time.sleep(180)
    back_at = stack.runtime.now()
    stack.start_scheduler()
    wait_for(lambda: stack.done(during), 240, interval=0.5)
    after_return = [(p.published_at - back_at).total_seconds() for p in stack.rows(during) if p.published_at]
    report("scheduler down 3 minutes", stack, during,
           extra=f"down {back_at - down_at}; published {round(max(after_return), 1)} s after its return at most",
           late_from=back_at)

    # SIGTERM while a message waits for its second: it is handed back, the next worker publishes it.
    due = stack.runtime.now() + timedelta(seconds=75)
    waiting = stack.schedule(due, "bench sigterm mid-wait")
    wait_for(lambda: stack.runtime.now() >= due - timedelta(seconds=3), 120, interval=0.05)
    stopping = time.monotonic()
    stop(worker, signal.SIGTERM)  # the main process only, as a container platform does
    stop_seconds = time.monotonic() - stopping
    stack.start_worker()
    wait_for(lambda: stack.done([waiting]), 120, interval=0.2)
    report("sigterm mid-wait", stack, [waiting], extra=f"worker stopped in {stop_seconds:.1f} s")
    with stack.runtime.session_factory() as session:
        per_slot = session.execute(select(JobRun.job, JobRun.slot, func.count()).group_by(
            JobRun.job, JobRun.slot).having(func.count() > 1)).all()
    print(f"    slots claimed more than once: {len(per_slot)}", flush=True)


def scenario_sigkill_media(stack: Stack) -> None:
    from sqlalchemy import func, select, update

    from app.media.library import add_image
    from app.models import MediaUpload, Post
    from tests.media.images import image_bytes

    def uploads() -> int:
        with stack.runtime.session_factory() as session:
            return session.scalar(select(func.count()).select_from(MediaUpload)) or 0

    with stack.runtime.session_factory() as session, session.begin():
        image = add_image(session, stack.runtime.media_storage, stack.user_id,
                          image_bytes("JPEG", (1200, 800), color="orange"), alt_text="An orange card").id
    now = stack.runtime.now()
    start = next_minute(now) + timedelta(seconds=40)
    ids = [stack.schedule(start + timedelta(seconds=5 * i), f"bench sigkill media post {i}") for i in range(6)]
    with stack.runtime.session_factory() as session, session.begin():
        session.execute(update(Post).where(Post.id.in_(ids)).values(media_id=image))
    for _ in range(20):
        stack.fx.hang_next(path="/2/tweets", seconds=HOLD)
    worker = stack.start_worker()
    stack.start_scheduler()
    wait_for(lambda: uploads() >= 1, 240, interval=0.1)
    stop(worker, signal.SIGKILL, group=True)  # between the upload and the create
    kills = [f"after the upload ({len(stack.fx.posts)} tweets)"]
    worker = stack.start_worker()
    wait_for(lambda: len(stack.fx.posts) >= 3, 240, interval=0.1)
    time.sleep(0.5)  # X holds the answer: a create is in flight
    stop(worker, signal.SIGKILL, group=True)
    kills.append(f"mid-create ({len(stack.fx.posts)} tweets)")
    stack.start_worker()
    wait_for(lambda: stack.done(ids), 240, interval=0.5)
    mine = [t for t in stack.fx.posts if t.text.startswith("bench sigkill media")]
    initializes = len(stack.fx.requests_to("/2/media/upload/initialize"))
    with_image = sum(1 for t in mine if len(t.media_ids) == 1)
    report("sigkill between upload and create", stack, ids,
           extra=f"kills {kills}; X uploads {initializes}, recorded {uploads()}, "
                 f"tweets with the image {with_image}/{len(mine)}")


def scenario_sigkill_open(stack: Stack) -> None:
    """SIGKILL right after the create left, on the two networks whose create can be repeated."""
    from app.providers.bluesky import BlueskyPublisher
    from app.providers.mastodon import MastodonPublisher

    fb, fm = stack.open_fakes
    worker = stack.start_worker()
    stack.start_scheduler()
    for platform, fake, path in ((BlueskyPublisher.platform, fb, "/xrpc/com.atproto.repo.createRecord"),
                                 (MastodonPublisher.platform, fm, "/api/v1/statuses")):
        created = _creations(platform, fake)
        start = next_minute(stack.runtime.now()) + timedelta(seconds=20)
        ids = [stack.schedule(start + timedelta(seconds=8 * i), f"bench {platform} sigkill post {i}", platform)
               for i in range(6)]
        for _ in range(30):
            fake.hang_next(path=path, seconds=HOLD)
        kills = []
        for nth in (2, 5):
            wait_for(lambda n=nth, c=created: len(c()) >= n, 240, interval=0.02)
            stop(worker, signal.SIGKILL, group=True)  # the create has left and been processed
            kills.append(stack.runtime.now())
            worker = stack.start_worker()
        wait_for(lambda i=ids: stack.done(i), 240, interval=0.5)
        report_open(f"{platform}: sigkill x2 right after the create, 6 posts", stack, ids, created(),
                    extra=f"kills at {[k.strftime('%H:%M:%S') for k in kills]}")


def _creations(platform: str, fake: Any) -> Callable[[], dict[str, tuple[str, datetime]]]:
    """External id -> (text, the platform's own creation time) of what the fake holds."""
    from app.providers.bluesky import BlueskyPublisher

    def bluesky() -> dict[str, tuple[str, datetime]]:
        return {r.uri: (r.value["text"], datetime.fromisoformat(r.value["createdAt"].replace("Z", "+00:00")))
                for r in fake.posts()}

    def mastodon() -> dict[str, tuple[str, datetime]]:
        return {s.id: (s.text, s.created_at.replace(microsecond=s.created_at.microsecond // 1000 * 1000))
                for s in list(fake.statuses)}

    return bluesky if platform == BlueskyPublisher.platform else mastodon


def report_open(name: str, stack: Stack, ids: list[int], created: dict[str, tuple[str, datetime]], *,
                extra: str = "") -> dict[str, Any]:
    """Each post once on the platform, recorded once, at the platform's own creation time."""
    from app.models import PostStatus

    rows = stack.rows(ids)
    texts = [text for text, _ in created.values()]
    duplicates = sum(1 for p in rows if texts.count(p.text) > 1)
    missing = sum(1 for p in rows if texts.count(p.text) == 0)
    exact = sum(1 for p in rows if p.status == PostStatus.PUBLISHED and p.external_id in created
                and created[p.external_id] == (p.text, p.published_at))
    lateness = [(p.published_at - p.scheduled_at).total_seconds() for p in rows if p.published_at is not None]
    result = {"scenario": name, "posts": len(ids), "published": len(lateness), "on_platform": len(created),
              "duplicates": duplicates, "missing": missing, "recorded_at_platform_time": exact,
              "max_late_s": round(max(lateness), 1) if lateness else None,
              "reconciled": stack.audit(ids, "post.reconciled"),
              "left": {str(s): n for s in (PostStatus.QUEUED, PostStatus.PUBLISHING, PostStatus.NEEDS_REVIEW)
                       if (n := sum(1 for p in rows if p.status == s))}}
    ok = (duplicates == missing == 0 and exact == len(ids) and len(created) == len(ids) and not result["left"]
          and max(lateness) <= BOUND)
    print(f"{'OK ' if ok else 'BAD'} {name}: {result}{' ' + extra if extra else ''}", flush=True)
    for post in rows:
        print(f"    post {post.id}: {post.status}, attempt {post.attempts}, late "
              f"{(post.published_at - post.scheduled_at).total_seconds() if post.published_at else '-'} s; "
              f"{(post.last_error or '')[:110]}", flush=True)
    return result


SCENARIOS = {"sigkill": scenario_sigkill, "sigkill-media": scenario_sigkill_media, "flushdb": scenario_flushdb,
             "flushdb-and-worker": scenario_flushdb_and_worker, "claim-no-send": scenario_claim_no_send,
             "schedulers": scenario_schedulers, "sigkill-open": scenario_sigkill_open}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15",
                        help="a Redis database this bench may flush (default: db 15)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                        help="run only these (repeatable); default: all")
    args = parser.parse_args()
    # Stopped early: still stop the processes and drop the database (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    from tests.fakes.bluesky import FakeBluesky
    from tests.fakes.linkedin import FakeLinkedIn
    from tests.fakes.mastodon import FakeMastodon
    from tests.fakes.x import FakeX

    for name in args.scenario or list(SCENARIOS):
        with (FakeX() as fx, FakeLinkedIn() as fl, FakeBluesky() as fb, FakeMastodon() as fm,
              tempfile.TemporaryDirectory() as logs):
            stack, cleanup = build_stack(args.redis_url, Path(logs), fx, fl, fb, fm)
            try:
                print(f"-- {name} (logs in {logs})", flush=True)
                SCENARIOS[name](stack)
            finally:
                cleanup()


if __name__ == "__main__":
    main()
