"""Recovery end to end: real posting workers SIGKILLed, SIGTERMed and robbed of their Redis data.

Real ``dramatiq actors.entrypoint -Q posting`` processes, Redis, PostgreSQL and a fake X that
holds every create for 2 s (the post exists on X while the worker waits for the answer, as in
a post that outlives its worker). The scheduler is the test itself: a :class:`Ticker` thread runs the
minute job ``dispatch_due_posts`` (its recovery, claim and catch-up steps, with the real slot
claim and the Redis message probe) every ``TICK`` seconds and sends what it returns, instead of
``periodiq`` once a minute, so each scenario takes seconds; the graces are shortened to match
(``MESSAGE_GRACE_SECONDS``/``WORKER_SILENCE_SECONDS`` = 3). ``bench/recovery.py`` runs the same
scenarios with a real ``periodiq`` scheduler, minute ticks and the default graces.

Dramatiq's own recovery of a dead worker's messages is left at its defaults (60 s heartbeat
timeout, 0.1 % maintenance chance): whatever comes back within these tests came back through
ours. Each test prints its figures (``pytest -s``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

import actors
from actors.liveness import probe_for
from actors.messages import send
from app import posts
from app.broker import build_broker
from app.intents import PublishPosts
from app.models import AuditLog, Post, PostStatus, User
from app.runtime import Runtime
from app.workflows.dispatch import DISPATCH_DUE_POSTS
from app.workflows.ticks import finish_tick, run_tick
from tests import services
from tests.e2e.test_publishing import (
    Worker,
    make_world,
    redis_db_url,
    settings_from,
    start_worker,
    wait_for,
    wait_ready,
    worker_env,
)
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX

pytestmark = pytest.mark.slow

#: Seconds between two runs of the minute job in these tests (the scheduler's minute, shrunk).
TICK = 2.0
#: How long the fake X holds each create before answering, in seconds.
HOLD = 2.0
#: The most a post may be late after any crash or Redis loss, in seconds.
BOUND = timedelta(seconds=90)


@dataclass
class Ticker:
    """The scheduler: runs the minute job every ``TICK`` s (synthetic slots, real claims)."""

    runtime: Runtime
    broker: object
    name: str = "scheduler"
    paused: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    ticks: int = 0
    errors: list[str] = field(default_factory=list)

    def tick(self) -> None:
        now = self.runtime.now()
        slot = datetime.fromtimestamp(now.timestamp() // TICK * TICK, UTC)
        probe = probe_for(self.broker, self.runtime.settings.worker_silence_seconds)  # type: ignore[arg-type]
        result = run_tick(self.runtime, DISPATCH_DUE_POSTS.name, slot, trigger="periodic",
                          message_id=f"{self.name}-{slot.isoformat()}", messages=probe)
        if result.claimed:
            sent = send(result.intents, self.runtime.now(), broker=self.broker)  # type: ignore[arg-type]
            finish_tick(self.runtime, DISPATCH_DUE_POSTS.name, slot, sent=sent)
            self.ticks += 1

    def run(self) -> None:
        while not self.stopped.wait(TICK - time.time() % TICK):
            if not self.paused.is_set():
                try:
                    self.tick()
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(repr(exc))

    def __enter__(self) -> Ticker:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(10)


@dataclass
class Rig:
    """A private Redis db, a posting worker that can be killed and restarted, and a runtime."""

    env: dict[str, str]
    client: redis.Redis
    broker: object
    runtime: Runtime
    fx: FakeX
    logs: Path
    user_id: int
    worker: Worker
    restarts: int = 0

    def start(self) -> Worker:
        started = time.time()
        self.restarts += 1
        self.worker = start_worker(self.env, self.logs / f"worker{self.restarts}.log", threads=4)
        assert wait_ready(self.client, 1, started), self.worker.stderr()
        return self.worker

    def schedule(self, at: datetime, text: str) -> int:
        with self.runtime.session_factory() as session, session.begin():
            user = session.get(User, self.user_id)
            assert user is not None
            return posts.create_one_off(session, user, "twitter", at, text, now=self.runtime.now()).id

    def posts(self, ids: list[int]) -> list[Post]:
        with self.runtime.session_factory() as session:
            rows = list(session.scalars(select(Post).where(Post.id.in_(ids)).order_by(Post.id)))
            session.expunge_all()
            return rows

    def all_published(self, ids: list[int]) -> bool:
        return all(p.status == PostStatus.PUBLISHED for p in self.posts(ids))

    def audit(self, ids: list[int], action: str) -> int:
        with self.runtime.session_factory() as session:
            return len(session.scalars(select(AuditLog.id).where(AuditLog.post_id.in_(ids),
                                                                 AuditLog.action == action)).all())


@pytest.fixture
def rig(pg_engine, pg_url, tmp_path) -> Iterator[Rig]:  # type: ignore[no-untyped-def]
    services.redis_client()
    with FakeX() as fx, FakeLinkedIn() as fl:
        env = worker_env(pg_url, redis_db_url(2), fx, fl, PROVIDER_TIMEOUT_SECONDS="30",
                         MESSAGE_GRACE_SECONDS="3", WORKER_SILENCE_SECONDS="3")
        client = redis.Redis.from_url(env["REDIS_URL"])
        client.flushdb()
        broker = build_broker(settings_from(env))
        actors.register(broker, settings_from(env))  # type: ignore[arg-type]
        started = time.time()
        worker = start_worker(env, tmp_path / "worker0.log", threads=4)
        try:
            assert wait_ready(client, 1, started), worker.stderr()
            world = make_world(env, (fx, fl), broker, worker)  # type: ignore[arg-type]
            rig = Rig(env, client, broker, world.runtime, fx, tmp_path, world.user_id, worker)
            yield rig
            worker = rig.worker  # the last one started
        finally:
            worker.stop()
            broker.close()  # type: ignore[attr-defined]
            client.close()


def hold_creates(fx: FakeX, count: int) -> None:
    """Every create is processed at once (the tweet exists) and answered ``HOLD`` s later."""
    for _ in range(count):
        fx.hang_next(path="/2/tweets", seconds=HOLD)


def check_published_once(rig: Rig, ids: list[int], *, bound: timedelta = BOUND) -> list[float]:
    """Every post published exactly once, on time within ``bound``, at its true time; lateness."""
    rows = rig.posts(ids)
    assert [p.status for p in rows] == [PostStatus.PUBLISHED] * len(ids), \
        [(p.id, p.status, p.last_error) for p in rows]
    tweets = {t.id: t for t in rig.fx.posts}
    texts = [t.text for t in rig.fx.posts]
    assert sorted(texts) == sorted(p.text for p in rows), "a post went out twice, or not at all"
    lateness = []
    for post in rows:
        tweet = tweets[post.external_id]
        assert post.published_at is not None
        # The true time: X's created_at (to the second) for a reconciled post, the answer's
        # arrival (HOLD s after creation) for one published normally.
        assert timedelta(seconds=-1) <= post.published_at - tweet.created_at <= timedelta(seconds=HOLD + 1)
        late = (post.published_at - post.scheduled_at).total_seconds()
        assert late <= bound.total_seconds(), f"post {post.id} was {late:.1f} s late"
        assert tweet.created_at >= post.scheduled_at - timedelta(seconds=1), "published early"
        lateness.append(late)
    return lateness


def test_sigkill_mid_publish_four_times_every_post_once_and_on_time(rig: Rig) -> None:
    start = rig.runtime.now() + timedelta(seconds=5)
    ids = [rig.schedule(start + timedelta(seconds=1.2 * i), f"Post {i} survives SIGKILL.") for i in range(20)]
    hold_creates(rig.fx, 40)
    kills = []
    with Ticker(rig.runtime, rig.broker) as ticker:
        for nth in (2, 7, 12, 16):
            # Mid-publish: X has created the nth tweet and is holding its answer.
            assert wait_for(lambda n=nth: len(rig.fx.posts) >= n, 60), rig.worker.stderr()
            time.sleep(0.3)
            rig.worker.kill(signal.SIGKILL)
            kills.append(rig.runtime.now())
            rig.start()
        assert wait_for(lambda: rig.all_published(ids), 60, interval=0.5), ticker.errors
    assert ticker.errors == []

    lateness = check_published_once(rig, ids)
    reconciled = rig.audit(ids, "post.reconciled")
    requeued = rig.audit(ids, "post.requeued")
    print(f"\nSIGKILL x4 over 20 posts: max {max(lateness):.1f} s late, "
          f"mean {sum(lateness) / len(lateness):.1f} s; {reconciled} reconciled, "
          f"{requeued} re-sent; lateness {sorted(round(x, 1) for x in lateness)}")
    assert reconciled >= 1, "no kill landed mid-publish"
    assert requeued >= 1


def test_flushdb_right_after_the_dispatch_claimed_ten_posts(rig: Rig) -> None:
    start = rig.runtime.now() + timedelta(seconds=6)
    ids = [rig.schedule(start + timedelta(seconds=0.5 * i), f"Post {i} outlives FLUSHDB.") for i in range(10)]
    ticker = Ticker(rig.runtime, rig.broker)
    ticker.tick()  # the dispatch claims all ten and sends their messages
    assert {p.status for p in rig.posts(ids)} == {PostStatus.QUEUED}
    rig.client.flushdb()

    with ticker:
        assert wait_for(lambda: rig.all_published(ids), 60, interval=0.5), rig.worker.stderr()
    assert ticker.errors == []

    lateness = check_published_once(rig, ids)
    print(f"\nFLUSHDB after the claim of 10: max {max(lateness):.1f} s late; "
          f"{rig.audit(ids, 'post.requeued')} re-sent; lateness {sorted(round(x, 1) for x in lateness)}")


def test_a_crash_between_claim_and_send_and_a_scheduler_down_then_back(rig: Rig) -> None:
    now = rig.runtime.now()
    stranded = [rig.schedule(now + timedelta(seconds=5 + i), f"Claimed, never sent {i}.") for i in range(3)]
    # A tick claims them and dies before sending: its intents are dropped.
    slot = datetime.fromtimestamp(now.timestamp() // TICK * TICK, UTC)
    crashed = run_tick(rig.runtime, DISPATCH_DUE_POSTS.name, slot, trigger="periodic", message_id="crashed",
                       messages=probe_for(rig.broker, 3))  # type: ignore[arg-type]
    assert sorted(p for i in crashed.intents if isinstance(i, PublishPosts) for p in i.post_ids) == stranded
    assert {p.status for p in rig.posts(stranded)} == {PostStatus.QUEUED}
    # Two schedulers; one of them stops for a while, then both run again.
    first, second = Ticker(rig.runtime, rig.broker, "first"), Ticker(rig.runtime, rig.broker, "second")
    second.paused.set()
    down_from = rig.runtime.now()
    with first, second:
        first.paused.set()  # both down: nothing dispatches meanwhile
        during = [rig.schedule(down_from + timedelta(seconds=4 + i), f"Due while down {i}.") for i in range(3)]
        time.sleep(7)
        assert {p.status for p in rig.posts(during)} == {PostStatus.SCHEDULED}
        back = rig.runtime.now()
        second.paused.clear()
        first.paused.clear()
        assert wait_for(lambda: rig.all_published(stranded + during), 40, interval=0.5), rig.worker.stderr()
    assert first.errors == second.errors == []

    lateness = check_published_once(rig, stranded + during)
    after_return = max((p.published_at - back).total_seconds() for p in rig.posts(during))  # type: ignore[operator]
    print(f"\nclaim without send: max {max(lateness[:3]):.1f} s late; scheduler down {back - down_from}: "
          f"its posts out {after_return:.1f} s after its return")
    assert after_return <= BOUND.total_seconds()


def test_sigterm_mid_wait_hands_the_message_back_and_stops_within_seconds(rig: Rig) -> None:
    due = rig.runtime.now() + timedelta(seconds=7)
    post_id = rig.schedule(due, "Handed back on SIGTERM.")
    Ticker(rig.runtime, rig.broker).tick()
    # The message reaches the posting queue up to 5 s early and the actor waits for its second.
    holders = lambda: [k for k in rig.client.keys("dramatiq:__acks__.*.posting") if rig.client.scard(k)]  # noqa: E731
    assert wait_for(holders, 10), rig.worker.stderr()
    assert rig.runtime.now() < due - timedelta(seconds=1)
    stopping = time.monotonic()
    # As a container platform does: SIGTERM to the main process, which forwards it once.
    os.kill(rig.worker.process.pid, signal.SIGTERM)
    rig.worker.process.wait(timeout=30)
    stop_seconds = time.monotonic() - stopping
    stopped_log = rig.worker.stderr()
    assert rig.posts([post_id])[0].status == PostStatus.QUEUED
    rig.start()  # no scheduler runs: only the handed-back message can publish it
    # A loaded machine may take longer than the 7 s to start the new worker: the post is then due
    # the moment a worker is back, and the handed-back message must publish it at once.
    due_or_back = max(due, rig.runtime.now())

    assert wait_for(lambda: rig.all_published([post_id]), 20, interval=0.2), stopped_log
    [late] = check_published_once(rig, [post_id], bound=timedelta(seconds=60))
    [post] = rig.posts([post_id])
    assert post.published_at is not None
    after = (post.published_at - due_or_back).total_seconds()
    assert after <= HOLD + 2, f"published {after:.1f} s after it was due with a worker running"
    print(f"\nSIGTERM mid-wait: the worker stopped in {stop_seconds:.1f} s; published {late:.1f} s late")
    assert stop_seconds < 10
