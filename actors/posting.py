"""Publishing: wait for the exact second, respect our rate limits, then claim and publish once.

The work is in :mod:`app.workflows.publish`; this actor only waits, rate-limits and re-sends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dramatiq
from dramatiq import Broker
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from actors.messages import PUBLISH_ACTOR, send
from app.config import Settings
from app.intents import PublishPost
from app.platforms import get_platform
from app.runtime import get_runtime
from app.workflows.publish import publish_post as publish
from app.workflows.publish import publish_target

#: Long enough for the early-arrival wait (a few seconds) plus the platform call's timeouts.
PUBLISH_TIME_LIMIT_MS = 5 * 60 * 1000
#: When our own limiter says no, try again after this long (the post stays queued).
RATE_LIMITED_RETRY = timedelta(seconds=60)


def sleep_until(due: datetime, clock: Callable[[], datetime]) -> None:
    """Sleep until ``due`` on the runtime's clock (a fast-forwarded demo clock never sleeps)."""
    remaining = (due - clock()).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def rate_limiter(settings: Settings, platform: str, user_id: int) -> BucketRateLimiter | None:
    """Dramatiq's bucket limiter on Redis, per platform and account; None on the in-process broker.

    A bucket, not Dramatiq's WindowRateLimiter: the window limiter keeps one key per second
    of its window, 86,400 keys WATCHed per call for a one-day LinkedIn limit (seen: 47 s).

    On top of the platform's own 429 handling: it keeps us under the limits the platform
    registry states (X: per 15 minutes; LinkedIn: per day) even across many workers.
    """
    client = getattr(dramatiq.get_broker(), "client", None)
    if client is None:
        return None
    entry = get_platform(platform)
    limit = getattr(settings, entry.posting_limit_setting)
    bucket_ms = int(entry.posting_window.total_seconds() * 1000)
    return BucketRateLimiter(RedisBackend(client=client), f"publish:{platform}:{user_id}", limit=limit,
                             bucket=bucket_ms)


def publish_post(post_id: int, claim_token: str, due_at: str | None = None) -> None:
    """Publish one post at its second (see :func:`app.workflows.publish.publish_post`)."""
    runtime = get_runtime()
    if due_at:
        sleep_until(datetime.fromisoformat(due_at).astimezone(UTC), runtime.now)
    target = publish_target(runtime, post_id)
    limiter = rate_limiter(runtime.settings, *target) if target else None
    if limiter is not None:
        with limiter.acquire(raise_on_failure=False) as acquired:
            if not acquired:
                retry_at = runtime.now() + RATE_LIMITED_RETRY
                send([PublishPost(post_id, claim_token, retry_at)], runtime.now())
                return
            outcome = publish(runtime, post_id, claim_token, runtime.now())
    else:
        outcome = publish(runtime, post_id, claim_token, runtime.now())
    if outcome.kind == "retry" and outcome.retry_at is not None and outcome.claim_token:
        send([PublishPost(post_id, outcome.claim_token, outcome.retry_at)], runtime.now())


def register(broker: Broker) -> None:
    dramatiq.actor(broker=broker, actor_name=PUBLISH_ACTOR, queue_name="posting",
                   max_retries=0, time_limit=PUBLISH_TIME_LIMIT_MS)(publish_post)
