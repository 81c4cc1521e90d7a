"""The Dramatiq broker and its middleware, built from Settings.

Redis when ``REDIS_URL`` is set, an in-process stub broker otherwise (the embedded
demo and ``autopilot run``). Middleware is listed explicitly so nobody has to guess
which defaults apply. What watches a Redis broker for the operators (the worker registry,
queue samples, failure notes, Prometheus) is handed over by :func:`actors.setup`, so this
module knows nothing of the ops figures that read it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Collection, Sequence

import dramatiq
import pendulum
from dramatiq import Broker
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
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
from app.error_tracking import init_error_tracking
from app.queues import QUEUES

logger = logging.getLogger(__name__)

#: The default maximum run time of one message, in milliseconds (generation calls an LLM).
DEFAULT_TIME_LIMIT_MS = 10 * 60 * 1000
#: The default bound on retries of a failed message.
DEFAULT_MAX_RETRIES = 5
#: The default minimum backoff between retries, in milliseconds.
DEFAULT_MIN_BACKOFF_MS = 5_000
#: The default maximum backoff between retries, in milliseconds.
DEFAULT_MAX_BACKOFF_MS = 10 * 60 * 1000
#: Periodiq drops periodic messages older than this many seconds; our slot claim makes late
#: runs safe, so a message that waited in a busy queue is never dropped (a week).
PERIODIC_SKIP_DELAY_SECONDS = 7 * 24 * 3600


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


def middleware(*, first: Sequence[dramatiq.Middleware] = (),
               last: Sequence[dramatiq.Middleware] = ()) -> list[dramatiq.Middleware]:
    """The middleware every broker gets, between ``first`` and ``last``.

    Dramatiq runs "after" hooks in reverse order: a middleware in ``first`` sees a message
    after Retries has decided whether it is given up.
    """
    return [
        *first,
        AgeLimit(),
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=DEFAULT_MAX_RETRIES, min_backoff=DEFAULT_MIN_BACKOFF_MS,
                max_backoff=DEFAULT_MAX_BACKOFF_MS),
        CurrentMessage(),
        PeriodiqMiddleware(skip_delay=PERIODIC_SKIP_DELAY_SECONDS),
        *last,
    ]


def build_broker(settings: Settings, *, first: Sequence[dramatiq.Middleware] = (),
                 last: Sequence[dramatiq.Middleware] = ()) -> Broker:
    """The broker for this configuration, with Sentry wired in when a DSN is set.

    ``first`` and ``last``: middleware listed before and after the standard ones (see
    :func:`middleware`); a worker process's observers, given by :func:`actors.setup`.
    """
    pin_schedule_to_utc()
    init_error_tracking(settings)  # Sentry, when SENTRY_DSN is set (app/error_tracking.py)
    broker: Broker
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        from app.redisconn import redis_client

        # A client, not a URL: a redis+sentinel:// URL gives the master the Sentinels name.
        broker = RedisBroker(client=redis_client(settings.redis_url), middleware=middleware(first=first, last=last),
                             heartbeat_timeout=settings.redis_heartbeat_timeout_ms,
                             maintenance_chance=settings.redis_maintenance_chance)
    else:
        broker = StubBroker(middleware=[*middleware(first=first, last=last), MessagesInFlight()])
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
        if not any(broker.queues[name].unfinished_tasks for q in QUEUES for name in (q, dq_name(q))):
            return
