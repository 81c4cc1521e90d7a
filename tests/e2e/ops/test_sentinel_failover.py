"""Redis high availability: a Sentinel failover in the middle of a publishing run.

A real master, replica and Sentinel (``redis-server --sentinel``) on loopback ports; a real
``dramatiq`` worker and this test's dispatcher both reach Redis through
``REDIS_URL=redis+sentinel://...``. Thirty posts fall due over twelve seconds; at the fourth
second ``SENTINEL FAILOVER`` promotes the replica. Messages written to the old master just before
it stepped down may be lost (replication is asynchronous): the database still knows those posts
are queued, and the sweeper re-sends them under a new claim (ARCHITECTURE decision 8). At the end
every post is published exactly once on the fake X, and nothing was sent to it twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest

from actors.messages import PUBLISH_LEAD_MS
from app.broker import build_broker
from app.models import AuditLog, Post, PostStatus
from app.ops.queues import queue_depths
from app.redisconn import redis_client
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.sweep import sweep_stuck_posts
from tests.e2e.ops.redis_ha import redis_ha
from tests.e2e.test_publishing import (
    make_world,
    publish_message,
    settings_from,
    start_worker,
    tweet_posts,
    worker_env,
)
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX
from tests.workers import wait_for

pytestmark = pytest.mark.slow

POSTS = 30
#: The first post is due this long after the start, the others every SPACING after it.
FIRST = timedelta(seconds=3)
SPACING = timedelta(seconds=0.4)
FAILOVER_AFTER = 4.0
#: A queued post this late has lost its message (the production sweeper waits 3 minutes; the
#: test shortens it, which only makes duplicates more likely if claims did not prevent them).
QUEUED_GRACE = timedelta(seconds=4)


def test_a_sentinel_failover_mid_run_loses_no_post_and_publishes_none_twice(pg_engine, pg_url, tmp_path):
    with redis_ha(tmp_path) as ha, FakeX() as fx, FakeLinkedIn() as fl:
        first_master = ha.master_port_now()
        env = worker_env(pg_url, ha.url, fx, fl)
        broker = build_broker(settings_from(env))
        worker = start_worker(env, tmp_path / "worker.log", threads=4)
        try:
            world = make_world(env, (fx, fl), broker, worker)
            start = world.clock()
            with world.runtime.session_factory() as session, session.begin():
                from app import posts
                from app.models import User

                user = session.get(User, world.user_id)
                ids = [posts.create_one_off(session, user, "twitter", start + FIRST + SPACING * i,
                                            f"Failover-proof post {i}", now=start).id for i in range(POSTS)]

            def send(dispatches) -> None:  # type: ignore[no-untyped-def]
                now = datetime.now(UTC)
                for d in dispatches:
                    delay = int((d.due_at - now).total_seconds() * 1000) - PUBLISH_LEAD_MS
                    broker.enqueue(publish_message(d.post_ids, d.claim_token, d.due_at),
                                   delay=delay if delay > 0 else None)

            send(dispatch_due_posts(world.runtime, world.clock()))
            failed_over_at = None
            began = time.monotonic()
            while time.monotonic() - began < 90:
                if failed_over_at is None and time.monotonic() - began >= FAILOVER_AFTER:
                    ha.failover()
                    failed_over_at = datetime.now(UTC)
                # The minute tick and the sweeper, on a faster clock than production's.
                try:
                    send(dispatch_due_posts(world.runtime, world.clock()))
                    send(sweep_stuck_posts(world.runtime, world.clock(), queued_grace=QUEUED_GRACE))
                except Exception:  # noqa: BLE001 - Redis unreachable for a moment mid-failover
                    pass
                if world.count(Post, Post.status == PostStatus.PUBLISHED) == POSTS:
                    break
                time.sleep(0.5)

            assert wait_for(lambda: ha.master_port_now() != first_master, 15), "no failover happened"
            assert ha.master_port_now() == ha.replica_port
            with world.runtime.session_factory() as session:
                rows = session.query(Post).filter(Post.id.in_(ids)).all()
                statuses = {p.status for p in rows}
                assert statuses == {PostStatus.PUBLISHED}, [(p.id, p.status, p.last_error) for p in rows
                                                            if p.status != PostStatus.PUBLISHED]
                published_after = sum(1 for p in rows if p.published_at > failed_over_at)
            texts = [p.text for p in fx.posts]
            assert sorted(texts) == sorted(f"Failover-proof post {i}" for i in range(POSTS))
            assert len(tweet_posts(fx)) == POSTS, "a post was sent to X twice"
            assert published_after > 0, "the run ended before the failover"
            requeued = world.count(AuditLog, AuditLog.action == "post.requeued")
            log = worker.stderr()
            print(f"failover: {published_after}/{POSTS} published after it, {requeued} re-sent by the "
                  f"sweeper, worker reconnects logged: {log.count('Restarting consumer')}")
            # The operations reads follow the new master too.
            depths = queue_depths(redis_client(ha.url), ("posting",))
            assert depths[0].dead == 0
        finally:
            worker.stop()
            broker.close()
            dramatiq.set_broker(dramatiq.get_broker())
