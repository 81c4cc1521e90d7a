"""Publishing: wait for the exact second, respect our rate limits, then claim and publish once.

The work is in app.workflows.publishing; this actor only waits, rate-limits and re-sends.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dramatiq
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from actors.messages import send_all
from app.config import Settings
from app.runtime import get_runtime
from app.workflows.publishing import publish_post as publish
from app.workflows.publishing import publish_target
from app.workflows.ticks import Outgoing

#: Long enough for the early-arrival wait (a few seconds) plus the platform call's timeouts.
PUBLISH_TIME_LIMIT_MS = 5 * 60 * 1000
#: When our own limiter says no, try again after this long (the post stays queued).
RATE_LIMITED_RETRY = timedelta(seconds=60)


def sleep_until(due: datetime, clock) -> None:  # type: ignore[no-untyped-def]
    """Sleep until ``due`` on the runtime's clock (a fast-forwarded demo clock never sleeps)."""
    remaining = (due - clock()).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def rate_limiter(settings: Settings, platform: str, user_id: int) -> BucketRateLimiter | None:
    """Dramatiq's bucket limiter on Redis, per platform and account; None on the in-process broker.

    A bucket, not Dramatiq's WindowRateLimiter: the window limiter keeps one key per second
    of its window, 86,400 keys WATCHed per call for a one-day LinkedIn limit (seen: 47 s).

    On top of the platform's own 429 handling: it keeps us under the documented posting
    limits (X: per 15 minutes; LinkedIn: per day) even across many workers.
    """
    client = getattr(dramatiq.get_broker(), "client", None)
    if client is None:
        return None
    if platform == "twitter":
        limit, bucket_ms = settings.x_posts_per_15_min, 15 * 60 * 1000
    else:
        limit, bucket_ms = settings.linkedin_posts_per_day, 24 * 3600 * 1000
    return BucketRateLimiter(RedisBackend(client=client), f"publish:{platform}:{user_id}", limit=limit,
                             bucket=bucket_ms)


@dramatiq.actor(queue_name="posting", max_retries=0, time_limit=PUBLISH_TIME_LIMIT_MS)
def publish_post(post_id: int, claim_token: str, due_at: str | None = None) -> None:
    runtime = get_runtime()
    if due_at:
        sleep_until(datetime.fromisoformat(due_at).astimezone(UTC), runtime.now)
    target = publish_target(runtime, post_id)
    limiter = rate_limiter(runtime.settings, *target) if target else None
    if limiter is not None:
        with limiter.acquire(raise_on_failure=False) as acquired:
            if not acquired:
                retry_at = runtime.now() + RATE_LIMITED_RETRY
                send_all([Outgoing("publish_post", (post_id, claim_token, retry_at.isoformat()), eta=retry_at)],
                         runtime.now())
                return
            outcome = publish(runtime, post_id, claim_token, runtime.now())
    else:
        outcome = publish(runtime, post_id, claim_token, runtime.now())
    if outcome.kind == "retry" and outcome.retry_at is not None and outcome.claim_token:
        send_all([Outgoing("publish_post", (post_id, outcome.claim_token, outcome.retry_at.isoformat()),
                           eta=outcome.retry_at)], runtime.now())
