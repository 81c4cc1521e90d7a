"""The Dramatiq broker and its middleware, built from Settings.

Redis when ``REDIS_URL`` is set, an in-process stub broker otherwise (the embedded
demo and ``autopilot run``). Middleware is listed explicitly so nobody has to guess
which defaults apply.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Collection

import dramatiq
import pendulum
from dramatiq import Broker
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from periodiq import PeriodiqMiddleware

from app.config import Settings

logger = logging.getLogger(__name__)

#: Named queues the workers bind to.
QUEUES = ("autonomous", "reports", "metrics", "posting", "legacy")
#: The default maximum run time of one message, in milliseconds (generation calls an LLM).
DEFAULT_TIME_LIMIT = 10 * 60 * 1000
#: The default bound on retries of a failed message.
DEFAULT_MAX_RETRIES = 5
#: The default minimum backoff between retries, in milliseconds.
DEFAULT_MIN_BACKOFF = 5_000
#: The default maximum backoff between retries, in milliseconds.
DEFAULT_MAX_BACKOFF = 10 * 60 * 1000
#: Periodiq drops periodic messages older than this many seconds; our slot claim makes late
#: runs safe, so a message that waited in a busy queue is never dropped (a week, in seconds).
PERIODIC_SKIP_DELAY = 7 * 24 * 3600


class MessagesInFlight(dramatiq.Middleware):
    """The in-process broker's answer to "is this message alive?" (a ``MessageProbe``).

    Counts each message id from enqueue to acknowledgement; a delayed message is counted twice
    while it moves from the delay queue to its queue, so the count never drops to zero early.
    Only meaningful inside the process that runs the workers (``autopilot run``, the demo).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def after_enqueue(self, broker: Broker, message: dramatiq.Message, delay: int | None) -> None:
        with self._lock:
            self._counts[message.message_id] += 1

    def _done(self, message: dramatiq.Message | MessageProxy) -> None:
        with self._lock:
            self._counts[message.message_id] -= 1
            if self._counts[message.message_id] <= 0:
                del self._counts[message.message_id]

    def after_ack(self, broker: Broker, message: MessageProxy) -> None:
        self._done(message)

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        self._done(message)

    def alive(self, message_ids: Collection[str]) -> set[str]:
        with self._lock:
            return {message_id for message_id in message_ids if self._counts.get(message_id, 0) > 0}


def pin_schedule_to_utc() -> None:
    """Make Periodiq read cron specs in UTC whatever the host's TZ (it reads pendulum.now())."""
    pendulum.set_local_timezone(pendulum.UTC)


def middleware(settings: Settings | None = None) -> list[dramatiq.Middleware]:
    """The middleware every broker gets; the worker registry and Prometheus only on Redis."""
    extra: list[dramatiq.Middleware] = []
    first: list[dramatiq.Middleware] = []
    if settings is not None and settings.redis_url:
        from app.ops.failures import FailureNotes
        from app.ops.sampling import QueueSampler
        from app.ops.workers import WorkerRegistry

        # Dramatiq runs "after" hooks in reverse order: listed first, FailureNotes runs after
        # Retries has decided whether the message is given up.
        first.append(FailureNotes())
        extra += [WorkerRegistry(), QueueSampler(settings)]
        if settings.dramatiq_prometheus:
            from dramatiq.middleware.prometheus import Prometheus

            # Per-actor counters and durations, served by each worker on dramatiq_prom_port.
            extra.append(Prometheus())
    return [
        *first,
        AgeLimit(),
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=DEFAULT_MAX_RETRIES, min_backoff=DEFAULT_MIN_BACKOFF, max_backoff=DEFAULT_MAX_BACKOFF),
        CurrentMessage(),
        PeriodiqMiddleware(skip_delay=PERIODIC_SKIP_DELAY),
        *extra,
    ]


def build_broker(settings: Settings) -> Broker:
    """The broker for this configuration, with Sentry wired in when a DSN is set."""
    pin_schedule_to_utc()
    if settings.sentry_dsn:
        import sentry_sdk
        from sentry_sdk.integrations.dramatiq import DramatiqIntegration

        # No local variables in events: a frame's locals may hold a decrypted token or a header.
        # Personal data is off by default (no send_default_pii / data_collection set).
        sentry_sdk.init(dsn=settings.sentry_dsn, integrations=[DramatiqIntegration()],
                        include_local_variables=False)
    broker: Broker
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        from app.redisconn import redis_client

        # A client, not a URL: a redis+sentinel:// URL gives the master the Sentinels name.
        broker = RedisBroker(client=redis_client(settings.redis_url), middleware=middleware(settings),
                             heartbeat_timeout=settings.redis_heartbeat_timeout_ms,
                             maintenance_chance=settings.redis_maintenance_chance)
    else:
        broker = StubBroker(middleware=[*middleware(), MessagesInFlight()])
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def drain(broker: StubBroker) -> None:
    """Work the in-process broker until every queue, delayed ones included, is empty.

    A message handled late in a pass may send to a queue joined earlier (a tick fans out to
    per-user messages), so passes repeat until nothing is left anywhere.
    """
    while True:
        for queue in QUEUES:
            broker.join(queue, fail_fast=True)
        if not any(broker.queues[name].unfinished_tasks for q in QUEUES for name in (q, f"{q}.DQ")):
            return
