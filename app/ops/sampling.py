"""Queue depth history: one sample per queue per minute, for the Operations page's charts.

Redis only knows the present, so the past is sampled into the ``queue_samples`` table. Who
samples: every worker process runs a :class:`QueueSampler` thread that wakes at each minute,
and the Operations page samples on each refresh; a Redis ``SET NX`` on the minute elects one
writer per minute and the table's unique (queue, minute) key settles any race, so the rows are
the same however many processes try. With no worker running, the page still fills the history
while it is open. Samples older than :data:`DEFAULT_RETENTION` are deleted as new ones arrive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dramatiq
import redis
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import QueueSample
from app.ops.queues import queue_depths
from app.ops.workers import census
from app.queues import QUEUES

logger = logging.getLogger(__name__)

#: How long samples are kept (the page charts 7 days).
DEFAULT_RETENTION = timedelta(days=8)
#: Seconds after the minute at which worker threads sample (after the minute tick's burst).
DEFAULT_OFFSET_SECONDS = 5.0
_ELECTION_KEY = "autopilot:queue-sample:{minute}"


def minute_of(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def record_sample(client: redis.Redis, session_factory: Callable[[], Session], settings: Settings,
                  now: datetime, *, queues: tuple[str, ...] = QUEUES, elect: bool = True) -> bool:
    """Store this minute's depth of each queue, unless some process already did; True if stored."""
    minute = minute_of(now)
    if elect and not client.set(_ELECTION_KEY.format(minute=minute.isoformat()), "1", nx=True, ex=300):
        return False
    depths = queue_depths(client, queues)
    workers = census(client, silence_seconds=settings.worker_silence_seconds)
    try:
        with session_factory() as session, session.begin():
            for d in depths:
                session.add(QueueSample(queue=d.queue, sampled_at=minute, waiting=d.waiting,
                                        in_flight=d.in_flight, delayed=d.delayed, dead=d.dead,
                                        workers=len(workers.consumers_of(d.queue))))
            session.execute(delete(QueueSample).where(QueueSample.sampled_at < minute - DEFAULT_RETENTION))
    except IntegrityError:
        return False  # another process stored this minute first
    return True


class QueueSampler(dramatiq.Middleware):
    """Samples queue depths once a minute from each worker process (one write per minute wins)."""

    def __init__(self, settings: Settings, *, offset_seconds: float = DEFAULT_OFFSET_SECONDS) -> None:
        self.settings = settings
        self.offset_seconds = offset_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        client = getattr(broker, "client", None)
        if client is None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(client,), name="queue-sampler", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def _loop(self, client: redis.Redis) -> None:
        from app.db import get_engine, make_session_factory

        factory = make_session_factory(get_engine(self.settings.database_url))
        while True:
            now = datetime.now(UTC)
            wait = (minute_of(now) + timedelta(minutes=1, seconds=self.offset_seconds) - now).total_seconds()
            if self._stop.wait(wait):
                return
            try:
                record_sample(client, factory, self.settings, datetime.now(UTC))
            except Exception:  # noqa: BLE001 - a failed sample must never take a worker down
                logger.exception("queue depth sample failed")
