"""DATABASE_REPLICA_URL: metrics, reports and operations figures read a real streaming replica.

The proof of routing is replication itself: with WAL replay paused on the replica, a post
published on the primary is invisible to the reads that go to the replica (metrics due, the
weekly report's figures, ``/metrics``'s posts by status) and visible again once replay resumes.
Writes (snapshots, report entries, audit rows) still land on the primary.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from admin import create_app
from app.clock import SettableClock
from app.config import Settings
from app.crypto import generate_key
from app.db import make_engine
from app.models import MemoryEntry, Post, PostStatus
from app.runtime import Runtime
from app.workflows.metrics import collect_metrics_for_user
from app.workflows.report import weekly_report_for_user
from tests.e2e.ops.pg_replica import streaming_replica
from tests.factories import make_users
from tests.workers import wait_for

pytestmark = pytest.mark.slow


def published(runtime: Runtime, user_id: int, at, n: int) -> None:  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session, session.begin():
        for i in range(n):
            session.add(Post(user_id=user_id, platform="twitter", text=f"r{time.monotonic_ns()}-{i}",
                             status=PostStatus.PUBLISHED, scheduled_at=at, published_at=at,
                             external_id=f"x-{time.monotonic_ns()}-{i}"))


def replayed_up_to_now(primary, replica):  # type: ignore[no-untyped-def]
    """A check that the replica has replayed everything the primary had written when it was made.

    The target is read once: the primary is shared with the other test processes, whose writes
    keep its current position moving, so comparing against it on every poll may never succeed."""
    with primary.connect() as p:
        target = p.execute(text("SELECT pg_current_wal_lsn()")).scalar()

    def caught_up() -> bool:
        with replica.connect() as r:
            return bool(r.execute(text("SELECT pg_last_wal_replay_lsn() >= :lsn"), {"lsn": target}).scalar())
    return caught_up


def test_reads_go_to_the_replica_and_writes_to_the_primary(pg_url, pg_engine, now):
    key = generate_key()
    with streaming_replica() as replica:
        database = pg_url.rsplit("/", 1)[1]
        settings = Settings(database_url=pg_url, database_replica_url=replica.url(database),
                            token_encryption_keys=(key,))
        runtime = Runtime.from_settings(settings, clock=SettableClock(now))
        assert runtime.read_session_factory is not runtime.session_factory
        replica_engine = make_engine(replica.url(database))
        with replica_engine.connect() as conn:
            assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is True

        user_id = make_users(runtime, 1)[0]
        published(runtime, user_id, now - timedelta(hours=3), 2)
        assert wait_for(replayed_up_to_now(pg_engine, replica_engine), 30)
        assert collect_metrics_for_user(runtime, user_id, now)["due"] == 2

        with replica_engine.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_pause()"))
            conn.commit()
        published(runtime, user_id, now - timedelta(hours=2), 3)  # on the primary only, for now
        # Metrics due: read on the replica, so the three new posts are not seen yet.
        assert collect_metrics_for_user(runtime, user_id, now)["due"] == 2
        # The weekly report's figures come from the replica too: 2 posts, not 5...
        report = weekly_report_for_user(runtime, user_id, now)
        assert report.content["posts"]["published"] == 2
        # The operations figures (/metrics on the admin) read the replica as well.
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": pg_url, "REDIS_URL": None,
                          "AUTOPILOT_SETTINGS": settings})
        body = app.test_client().get("/metrics").get_data(as_text=True)
        posts = {s.labels["status"]: s.value for f in text_string_to_metric_families(body)
                 if f.name == "autopilot_posts" for s in f.samples}
        assert posts["published"] == 2
        # ...and the report's entry was written on the primary (the replica cannot take writes).
        with runtime.session_factory() as session:
            assert session.get(MemoryEntry, report.id) is not None

        with replica_engine.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
            conn.commit()
        assert wait_for(replayed_up_to_now(pg_engine, replica_engine), 30)
        assert collect_metrics_for_user(runtime, user_id, now)["due"] == 5
        assert weekly_report_for_user(runtime, user_id, now).content["posts"]["published"] == 5
        replica_engine.dispose()
        for factory in (runtime.replica_session_factory,):
            factory.kw["bind"].dispose()  # type: ignore[union-attr]
