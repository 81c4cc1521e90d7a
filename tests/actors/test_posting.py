"""Our own posting limits, per platform and account, on Redis (Dramatiq's window limiter)."""

from __future__ import annotations

import dramatiq

from actors.posting import rate_limiter
from app.broker import build_broker
from app.config import Settings


def test_window_limiter_is_per_platform_and_account(redis_url):
    settings = Settings(redis_url=redis_url, x_posts_per_15_min=2, linkedin_posts_per_day=1)
    previous = dramatiq.get_broker()
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    try:
        def acquire(platform: str, user_id: int) -> bool:
            limiter = rate_limiter(settings, platform, user_id)
            assert limiter is not None
            with limiter.acquire(raise_on_failure=False) as acquired:
                return acquired

        assert [acquire("twitter", 1) for _ in range(3)] == [True, True, False]
        assert acquire("twitter", 2) is True  # another account has its own budget
        assert [acquire("linkedin", 1) for _ in range(2)] == [True, False]
    finally:
        dramatiq.set_broker(previous)
        broker.close()


def test_no_limiter_on_the_in_process_broker():
    previous = dramatiq.get_broker()
    dramatiq.set_broker(build_broker(Settings()))
    try:
        assert rate_limiter(Settings(), "twitter", 1) is None
    finally:
        dramatiq.set_broker(previous)
