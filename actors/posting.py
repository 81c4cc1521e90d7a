"""Publishing: wait for the exact second, respect our rate limits, then claim and publish once.

The work is in :mod:`app.workflows.publish`; this actor only waits, rate-limits and re-sends.

**Stopping.** A message arrives up to a few seconds before its post's second and waits here.
When the worker is told to stop (SIGTERM: Dramatiq's ``before_worker_shutdown``), every wait
ends at once and hands its message back: the same publish (same claim token, so the same
message id) is sent again for another worker once this worker's consumers have stopped
(``after_worker_shutdown``; sent earlier, this very worker could fetch it again and take it
down with it), and the waiting message is acknowledged. A platform call
already in flight is finished, bounded by ``PROVIDER_TIMEOUT_SECONDS``; a worker killed before
it ends leaves a ``publishing`` post that the minute's recovery reconciles with the platform.
So a posting worker needs a stop period of ``PROVIDER_TIMEOUT_SECONDS`` plus a few seconds
(the compose file gives 45 s, with ``--worker-shutdown-timeout 40000``).
"""

from __future__ import annotations

import logging
import threading
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
from app.workflows.publish import postpone, publish_target
from app.workflows.publish import publish_post as publish

logger = logging.getLogger(__name__)

#: Long enough for the early-arrival wait (a few seconds) plus the platform call's timeouts.
PUBLISH_TIME_LIMIT_MS = 5 * 60 * 1000
#: When our own limiter says no, try again after this long (the post stays queued).
RATE_LIMITED_RETRY = timedelta(seconds=60)


class StopWaiting(dramatiq.Middleware):
    """Ends every publish wait when the worker is told to stop; sends the handed-back messages
    once its consumers are gone (see the module docstring)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._handed_back: list[PublishPost] = []

    def before_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self.stopping.clear()

    def before_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self.stopping.set()

    def hand_back(self, intent: PublishPost) -> None:
        with self._lock:
            self._handed_back.append(intent)

    def after_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        with self._lock:
            intents, self._handed_back = self._handed_back, []
        if intents:
            send(intents, get_runtime().now(), broker=broker)
            logger.info("handed %d waiting publish message(s) back to the queue", len(intents))


def _stop_waiting(broker: Broker) -> StopWaiting | None:
    for middleware in broker.middleware:
        if isinstance(middleware, StopWaiting):
            return middleware
    return None


def sleep_until(due: datetime, clock: Callable[[], datetime], stopping: threading.Event | None = None) -> bool:
    """Sleep until ``due`` on the runtime's clock (a fast-forwarded demo clock never sleeps).

    Returns False when ``stopping`` was set before ``due``: the caller hands its message back.
    """
    remaining = (due - clock()).total_seconds()
    if remaining <= 0:
        return True
    return not (stopping or threading.Event()).wait(remaining)


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
        due = datetime.fromisoformat(due_at).astimezone(UTC)
        stop = _stop_waiting(dramatiq.get_broker())
        if not sleep_until(due, runtime.now, stop.stopping if stop else None):
            assert stop is not None
            # Stopping: the same message (token and id) goes back once the consumers are gone.
            stop.hand_back(PublishPost(post_id, claim_token, due))
            return
    target = publish_target(runtime, post_id)
    limiter = rate_limiter(runtime.settings, *target) if target else None
    if limiter is not None:
        with limiter.acquire(raise_on_failure=False) as acquired:
            if not acquired:
                # A new token and message: the post waits for the limit, visibly (queued_at).
                retry_at = runtime.now() + RATE_LIMITED_RETRY
                token = postpone(runtime, post_id, claim_token, retry_at)
                if token is not None:
                    send([PublishPost(post_id, token, retry_at)], runtime.now())
                return
            outcome = publish(runtime, post_id, claim_token, runtime.now())
    else:
        outcome = publish(runtime, post_id, claim_token, runtime.now())
    if outcome.kind == "retry" and outcome.retry_at is not None and outcome.claim_token:
        send([PublishPost(post_id, outcome.claim_token, outcome.retry_at)], runtime.now())


def register(broker: Broker) -> None:
    broker.add_middleware(StopWaiting())
    dramatiq.actor(broker=broker, actor_name=PUBLISH_ACTOR, queue_name="posting",
                   max_retries=0, time_limit=PUBLISH_TIME_LIMIT_MS)(publish_post)
