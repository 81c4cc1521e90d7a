"""What Redis holds for each named queue: waiting, in flight, delayed and dead.

Read in Dramatiq's own key layout (:mod:`app.redis_layout`). Every read here is one MULTI round
trip, so a page refreshing every few seconds costs Redis a handful of O(1) commands per queue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis

from app.redis_layout import (
    DEFAULT_NAMESPACE,
    dead_key,
    delayed_messages_key,
    messages_key,
    queue_key,
)


@dataclass(frozen=True)
class QueueDepth:
    """One queue's messages right now, by where they are."""

    queue: str
    #: In the queue's list, not fetched by any worker yet.
    waiting: int
    #: Fetched by a worker and not acknowledged yet (prefetched or running).
    in_flight: int
    #: Delayed messages (retries, publishes waiting for their second), mostly held by workers.
    delayed: int
    #: Dead-lettered: failed for good; kept by Dramatiq for 7 days.
    dead: int

    @property
    def depth(self) -> int:
        """Work not done yet: what ``autopilot check`` compares with the depth threshold."""
        return self.waiting + self.in_flight + self.delayed

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "depth": self.depth}


def queue_depths(client: redis.Redis, queues: tuple[str, ...], *,
                 namespace: str = DEFAULT_NAMESPACE) -> list[QueueDepth]:
    """Each queue's waiting, in-flight, delayed and dead counts, in one round trip."""
    pipe = client.pipeline(transaction=True)  # one consistent snapshot
    for queue in queues:
        pipe.llen(queue_key(queue, namespace=namespace))
        pipe.hlen(messages_key(queue, namespace=namespace))
        pipe.hlen(delayed_messages_key(queue, namespace=namespace))
        pipe.zcard(dead_key(queue, namespace=namespace))
    values = pipe.execute()
    depths = []
    for i, queue in enumerate(queues):
        waiting, unacked, delayed, dead = (int(v) for v in values[4 * i: 4 * i + 4])
        # A message is pushed to the list and the hash in one script, so the hash holds at
        # least the list; max() only guards against a torn read across the pipeline.
        depths.append(QueueDepth(queue, waiting, max(0, unacked - waiting), delayed, dead))
    return depths
