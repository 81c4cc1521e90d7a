"""Publishing: wait for the exact second, then claim and publish each post of the message once.

The work is in :mod:`app.workflows.publish`; this actor waits, gives the workflow our rate
limiter and a thread pool for the platform calls, and sends what comes back (retries).

**Concurrency.** A message carries the posts due at one second (up to ``PUBLISH_BATCH_SIZE``),
so the early-arrival wait holds one Dramatiq thread per batch, not per post. Their platform
calls run on one thread pool per process, ``PUBLISH_CONCURRENCY`` threads shared by all of the
process's messages: a burst is bounded by that pool and the platform's latency, not by the
Dramatiq threads (README: Sizing the posting worker).

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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import dramatiq
from dramatiq import Broker

from actors.limits import within_limits
from actors.messages import PUBLISH_ACTOR, PUBLISH_ONE_ACTOR, send
from app.config import Settings
from app.intents import PublishPosts
from app.queues import Queue
from app.runtime import get_runtime
from app.workflows.publish import Attempt, Ready, RunCalls
from app.workflows.publish import publish_posts as publish

logger = logging.getLogger(__name__)

#: Long enough for the early-arrival wait (a few seconds) plus the platform call's timeouts.
PUBLISH_TIME_LIMIT_MS = 5 * 60 * 1000


class StopWaiting(dramatiq.Middleware):
    """Ends every publish wait when the worker is told to stop; sends the handed-back messages
    once its consumers are gone (see the module docstring)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._handed_back: list[PublishPosts] = []

    def before_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self.stopping.clear()

    def before_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self.stopping.set()

    def hand_back(self, intent: PublishPosts) -> None:
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


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def concurrently(settings: Settings) -> RunCalls:
    """The workflow's ``run_calls``: the batch's platform calls on this process's shared pool."""
    def run_calls(call: Callable[[Ready], Attempt], items: Sequence[Ready]) -> list[Attempt]:
        if len(items) <= 1:
            return [call(item) for item in items]
        return list(_shared_pool(settings.publish_concurrency).map(call, items))

    return run_calls


def _shared_pool(size: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="publish")
        return _pool


def publish_posts(post_ids: list[int], claim_token: str, due_at: str | None = None) -> None:
    """Publish the posts due at one second (see :func:`app.workflows.publish.publish_posts`)."""
    runtime = get_runtime()
    ids = tuple(int(post_id) for post_id in post_ids)
    if due_at:
        due = datetime.fromisoformat(due_at).astimezone(UTC)
        stop = _stop_waiting(dramatiq.get_broker())
        if not sleep_until(due, runtime.now, stop.stopping if stop else None):
            assert stop is not None
            # Stopping: the same message (token and id) goes back once the consumers are gone.
            stop.hand_back(PublishPosts(claim_token, due, ids))
            return
    settings = runtime.settings
    batch = publish(runtime, ids, claim_token, runtime.now(), allow=within_limits(settings),
                    run_calls=concurrently(settings))
    if batch.resend:
        send(batch.resend, runtime.now())


def publish_post(post_id: int, claim_token: str, due_at: str | None = None) -> None:
    """A one-post message from before batches (:data:`~actors.messages.PUBLISH_ONE_ACTOR`)."""
    publish_posts([post_id], claim_token, due_at)


def register(broker: Broker) -> None:
    broker.add_middleware(StopWaiting())
    for name, fn in ((PUBLISH_ACTOR, publish_posts), (PUBLISH_ONE_ACTOR, publish_post)):
        dramatiq.actor(broker=broker, actor_name=name, queue_name=Queue.POSTING,
                       max_retries=0, time_limit=PUBLISH_TIME_LIMIT_MS)(fn)
