"""``autopilot posts recover``, why a post is late in ``autopilot posts list``, and ``jobs run``
refusing to report a slot it will not run, on SQLite and on a real Redis broker.

The Redis tests write Dramatiq's keys as its ``dispatch.lua`` would (a message hash, a worker's
ack set, the heartbeat set), so the probe's reading of the key layout is checked key by key;
tests/e2e/test_recovery.py checks it against real worker processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import make_engine
from app.models import JobRun, LateReason, Post, PostStatus, User
from app.statuses import ExecutionStatus
from app.workflows.jobs import JOBS
from tests import services
from tests.cli import autopilot

USER = ["users", "create", "a@example.com", "--timezone", "UTC", "--platform", "twitter=09:00"]


@pytest.fixture
def user_url(sqlite_url: str) -> str:
    for args in (USER, ["accounts", "connect", "--user", "a@example.com", "--platform", "twitter",
                        "--access-token", "sandbox-token"]):
        result = autopilot(sqlite_url, *args)
        assert result.returncode == 0, result.stderr
    return sqlite_url


@pytest.fixture
def broker_redis() -> Iterator[redis.Redis]:
    client = services.redis_client()
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def add_post(url: str, **values: Any) -> int:
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        user = session.scalar(select(User))
        assert user is not None
        post = Post(user_id=user.id, platform="twitter", text=f"post {time.monotonic_ns()}", **values)
        session.add(post)
        session.flush()
        post_id = post.id
    engine.dispose()
    return post_id


def load(url: str, post_id: int) -> Post:
    engine = make_engine(url)
    with Session(engine) as session:
        post = session.get(Post, post_id)
        assert post is not None
        session.expunge(post)
    engine.dispose()
    return post


def test_posts_list_says_why_a_post_is_late_and_since_when(user_url):
    now = datetime.now(UTC).replace(microsecond=0)
    waiting = add_post(user_url, status=PostStatus.QUEUED, scheduled_at=now - timedelta(seconds=30),
                       queued_at=now - timedelta(minutes=2), claim_token="t1")
    resent = add_post(user_url, status=PostStatus.QUEUED, scheduled_at=now - timedelta(seconds=40),
                      queued_at=now - timedelta(seconds=5), claim_token="t2",
                      late_reason=LateReason.RESENT, late_since=now - timedelta(seconds=5))
    reconciling = add_post(user_url, status=PostStatus.PUBLISHING, scheduled_at=now - timedelta(seconds=50),
                           publish_started_at=now - timedelta(seconds=50), claim_token="t3",
                           late_reason=LateReason.RECONCILING, late_since=now - timedelta(seconds=2))
    on_time = add_post(user_url, status=PostStatus.QUEUED, scheduled_at=now + timedelta(minutes=1),
                       queued_at=now, claim_token="t4")

    listed = autopilot(user_url, "posts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    late = {d["id"]: d["late"] for d in json.loads(listed.stdout)}
    assert late[waiting]["why"] == "waiting for its message"
    assert late[waiting]["since"] == (now - timedelta(seconds=30)).isoformat()
    assert late[resent]["why"].startswith("being recovered")
    assert late[resent]["since"] == (now - timedelta(seconds=5)).isoformat()
    assert late[reconciling]["why"].startswith("reconciling")
    assert late[on_time] is None
    text = autopilot(user_url, "posts", "list").stdout
    assert "waiting for its message, since" in text and "being recovered" in text
    shown = autopilot(user_url, "posts", "show", str(reconciling)).stdout
    assert "reconciling" in shown and f"{now - timedelta(seconds=2):%H:%M:%S}" in shown


def test_posts_recover_in_process_resends_and_publishes_a_lost_post(user_url):
    now = datetime.now(UTC)
    lost = add_post(user_url, status=PostStatus.QUEUED, scheduled_at=now - timedelta(minutes=5),
                    queued_at=now - timedelta(minutes=5), claim_token="lost")
    fresh = add_post(user_url, status=PostStatus.QUEUED, scheduled_at=now + timedelta(minutes=1),
                     queued_at=now, claim_token="fresh")

    result = autopilot(user_url, "posts", "recover")

    assert result.returncode == 0, result.stderr
    assert "1 lost message(s) re-sent" in result.stdout and "0 sent to review" in result.stdout
    assert f"post {lost}: re-sent" in result.stdout
    post = load(user_url, lost)
    assert post.status == PostStatus.PUBLISHED and post.claim_token is None
    assert load(user_url, fresh).claim_token == "fresh"  # not presumed lost: not 3 minutes late


def _message(post_id: int, token: str, due: datetime, queue: str = "posting") -> bytes:
    return dramatiq.Message(queue_name=queue, actor_name="publish_post", args=(post_id, token, due.isoformat()),
                            kwargs={}, options={}, message_id=token).encode()


def test_posts_recover_on_redis_reads_dramatiqs_keys(user_url, broker_redis):
    now = datetime.now(UTC)
    past = now - timedelta(seconds=30)
    ids = {name: add_post(user_url, status=PostStatus.QUEUED, scheduled_at=past, queued_at=past - timedelta(minutes=2),
                          claim_token=name)
           for name in ("waiting", "delayed", "held-live", "held-dead", "flushed")}
    now_ms = time.time() * 1000
    r = broker_redis
    # Waiting in the queue; held in memory by a live worker until its eta; fetched by a live
    # worker; fetched by a worker silent for a minute; and one whose data is gone.
    r.hset("dramatiq:posting.msgs", "r1", _message(ids["waiting"], "waiting", past))
    r.rpush("dramatiq:posting", "r1")
    r.hset("dramatiq:posting.DQ.msgs", "r2", _message(ids["delayed"], "delayed", past, "posting.DQ"))
    r.sadd("dramatiq:__acks__.live-worker.posting.DQ", "r2")
    r.hset("dramatiq:posting.msgs", "r3", _message(ids["held-live"], "held-live", past))
    r.sadd("dramatiq:__acks__.live-worker.posting", "r3")
    r.hset("dramatiq:posting.msgs", "r4", _message(ids["held-dead"], "held-dead", past))
    r.sadd("dramatiq:__acks__.dead-worker.posting", "r4")
    r.zadd("dramatiq:__heartbeats__", {"live-worker": now_ms, "dead-worker": now_ms - 60_000})

    result = autopilot(user_url, "posts", "recover", "--json", extra_env={"REDIS_URL": services.TEST_REDIS_URL})

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["broker"], data["resent"], data["alive"]) == ("redis", 2, 3)
    assert sorted(p["id"] for p in data["resent_posts"]) == sorted([ids["held-dead"], ids["flushed"]])
    for name in ("waiting", "delayed", "held-live"):
        assert load(user_url, ids[name]).claim_token == name
    # The re-sent messages are in the broker under their new tokens (message id = claim token).
    resent_tokens = {load(user_url, ids[name]).claim_token for name in ("held-dead", "flushed")}
    stored = [dramatiq.Message.decode(v) for key in ("dramatiq:posting.msgs", "dramatiq:posting.DQ.msgs")
              for v in r.hgetall(key).values()]
    assert resent_tokens <= {m.message_id for m in stored}
    assert all(load(user_url, ids[n]).late_reason == LateReason.RESENT for n in ("held-dead", "flushed"))


def test_jobs_run_on_redis_says_a_claimed_slot_already_ran_and_enqueues_nothing(user_url, broker_redis):
    slot = JOBS["sweep_stuck_posts"].latest_fire(datetime.now(UTC))
    assert slot is not None
    claimed_at = slot + timedelta(seconds=1)
    engine = make_engine(user_url)
    with Session(engine) as session, session.begin():
        session.add(JobRun(job="sweep_stuck_posts", slot=slot, trigger="periodic", claimed_at=claimed_at,
                           finished_at=claimed_at + timedelta(seconds=2), status=ExecutionStatus.SUCCEEDED,
                           fanned_out=0))
    engine.dispose()

    result = autopilot(user_url, "jobs", "run", "sweep_stuck_posts", extra_env={"REDIS_URL": services.TEST_REDIS_URL})

    assert result.returncode == 0, result.stderr
    assert "already ran for this slot" in result.stdout and "queued" not in result.stdout
    assert f"claimed {claimed_at:%Y-%m-%d %H:%M:%S} UTC by its periodic trigger" in result.stdout
    assert "autopilot posts recover" in result.stdout
    assert broker_redis.hlen("dramatiq:legacy.msgs") == 0

    fresh = autopilot(user_url, "jobs", "run", "daily_generation", "--json",
                      extra_env={"REDIS_URL": services.TEST_REDIS_URL})
    assert json.loads(fresh.stdout)["mode"] == "enqueued"
    assert broker_redis.hlen("dramatiq:legacy.msgs") == 1
