"""What Redis holds for each named queue, read in Dramatiq's own key layout.

Dramatiq's Redis broker (``dramatiq/brokers/redis.py`` and its ``dispatch.lua``) keeps, under
the namespace ``dramatiq``:

* ``dramatiq:Q``            a list of message ids waiting to be fetched;
* ``dramatiq:Q.msgs``       a hash id -> message of every unacknowledged message of Q: the
  waiting ones and those a worker fetched and has not acknowledged yet (prefetched or running);
* ``dramatiq:Q.DQ`` and ``dramatiq:Q.DQ.msgs`` the same for delayed messages. Workers fetch
  delayed messages at once and hold them in memory until their eta, so the ``.DQ`` list is
  empty while the ``.DQ.msgs`` hash still counts every one of them: the hash is the count;
* ``dramatiq:Q.XQ`` (a sorted set id -> time of death) and ``dramatiq:Q.XQ.msgs``: dead letters,
  kept for Dramatiq's dead message TTL (7 days);
* ``dramatiq:__heartbeats__``: a sorted set broker id -> last command time (ms), written by every
  process that talks to the broker, workers and senders alike (see :mod:`app.ops.workers`);
* ``dramatiq:__acks__.<broker id>.Q``: the ids a process fetched from Q and has not acknowledged.

Every read here is one MULTI round trip, so a page refreshing every few seconds costs Redis
a handful of O(1) commands per queue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis

#: Dramatiq's default key namespace (RedisBroker(namespace=...)).
DEFAULT_NAMESPACE = "dramatiq"


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


def key(queue: str, suffix: str = "", *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``dramatiq:posting``, ``dramatiq:posting.DQ.msgs``..."""
    return f"{namespace}:{queue}{suffix}"


def queue_depths(client: redis.Redis, queues: tuple[str, ...], *,
                 namespace: str = DEFAULT_NAMESPACE) -> list[QueueDepth]:
    """Each queue's waiting, in-flight, delayed and dead counts, in one round trip."""
    pipe = client.pipeline(transaction=True)  # one consistent snapshot
    for queue in queues:
        pipe.llen(key(queue, namespace=namespace))
        pipe.hlen(key(queue, ".msgs", namespace=namespace))
        pipe.hlen(key(queue, ".DQ.msgs", namespace=namespace))
        pipe.zcard(key(queue, ".XQ", namespace=namespace))
    values = pipe.execute()
    depths = []
    for i, queue in enumerate(queues):
        waiting, unacked, delayed, dead = (int(v) for v in values[4 * i: 4 * i + 4])
        # A message is pushed to the list and the hash in one script, so the hash holds at
        # least the list; max() only guards against a torn read across the pipeline.
        depths.append(QueueDepth(queue, waiting, max(0, unacked - waiting), delayed, dead))
    return depths
