"""Our own posting limits, per platform and account, on the broker's Redis (actors/limits.py)."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from actors.limits import PostingLimits, bucket_key, within_limits
from app.broker import build_broker
from app.config import Settings

NOW_MS = 1_800_000_000_000 + 123  # inside a 15-minute window and a day window alike


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def limits_for(client: redis.Redis, **settings: int) -> PostingLimits:
    return PostingLimits(client, Settings(**settings), clock_ms=lambda: NOW_MS)  # type: ignore[arg-type]


def test_each_account_gets_its_own_budget_per_platform(client: redis.Redis) -> None:
    limits = limits_for(client, x_posts_per_15_min=2, linkedin_posts_per_day=1)
    x1, x2, li1 = ("twitter", 1), ("twitter", 2), ("linkedin", 1)

    assert limits.allow([x1, x1, x1, x2, li1, li1]) == [True, True, False, True, True, False]
    assert limits.allow([x1, x2, li1]) == [False, True, False]  # the budget is spent across calls
    assert limits.allow([]) == []


def test_the_window_is_fixed_and_expires_with_its_key(client: redis.Redis) -> None:
    limits = limits_for(client, x_posts_per_15_min=1)
    assert limits.allow([("twitter", 7)]) == [True]
    key = bucket_key("twitter", 7, NOW_MS, 15 * 60 * 1000)
    assert key == f"publish:twitter:7@{NOW_MS - NOW_MS % 900_000}"
    assert int(client.get(key) or 0) == 1
    assert 0 < client.pttl(key) <= 900_000
    later = PostingLimits(client, Settings(x_posts_per_15_min=1), clock_ms=lambda: NOW_MS + 900_000)
    assert later.allow([("twitter", 7)]) == [True]  # the next window has its own budget


def test_counts_against_the_same_budget_as_dramatiqs_bucket_limiter(
        client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same keys and counting as BucketRateLimiter: a worker of the previous release, still
    draining during an upgrade, and this one share one budget."""
    monkeypatch.setattr("dramatiq.rate_limits.bucket.time.time", lambda: NOW_MS / 1000)  # one clock for both
    bucket_ms = 15 * 60 * 1000
    dramatiq_limiter = BucketRateLimiter(RedisBackend(client=client), "publish:twitter:3", limit=3,
                                         bucket=bucket_ms)
    with dramatiq_limiter.acquire(raise_on_failure=False) as acquired:
        assert acquired
    ours = limits_for(client, x_posts_per_15_min=3)
    assert ours.allow([("twitter", 3)] * 3) == [True, True, False]
    with dramatiq_limiter.acquire(raise_on_failure=False) as acquired:
        assert not acquired


def test_no_limits_on_the_in_process_broker() -> None:
    previous = dramatiq.get_broker()
    dramatiq.set_broker(build_broker(Settings()))
    try:
        assert within_limits(Settings()) is None
    finally:
        dramatiq.set_broker(previous)


def test_the_posting_actor_uses_the_brokers_redis(redis_url: str, client: redis.Redis) -> None:
    settings = Settings(redis_url=redis_url, x_posts_per_15_min=1)
    previous = dramatiq.get_broker()
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    try:
        allow = within_limits(settings)
        assert allow is not None
        assert allow([("twitter", 1), ("twitter", 1)]) == [True, False]
    finally:
        dramatiq.set_broker(previous)
        broker.close()
