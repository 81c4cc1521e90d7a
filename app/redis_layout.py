"""Dramatiq's Redis key layout, and the one rule for "is this worker process alive?".

Dramatiq's Redis broker (``dramatiq/brokers/redis.py`` and its ``dispatch.lua``) keeps, under
its namespace (``dramatiq`` unless ``RedisBroker(namespace=...)`` says otherwise):

* ``<ns>:Q``            a list of message ids waiting to be fetched;
* ``<ns>:Q.msgs``       a hash id -> message of every unacknowledged message of Q: the waiting
  ones and those a worker fetched and has not acknowledged yet (prefetched or running);
* ``<ns>:Q.DQ`` and ``<ns>:Q.DQ.msgs`` the same for delayed messages. Workers fetch delayed
  messages at once and hold them in memory until their eta, so the ``.DQ`` list is empty while
  the ``.DQ.msgs`` hash still counts every one of them: the hash is the count;
* ``<ns>:Q.XQ`` (a sorted set id -> time of death, ms) and ``<ns>:Q.XQ.msgs``: dead letters,
  kept for Dramatiq's dead message TTL (7 days);
* ``<ns>:__heartbeats__``: a sorted set broker id -> last command time (ms), written by every
  process that talks to the broker, workers and senders alike;
* ``<ns>:__acks__.<broker id>.Q`` (and ``.Q.DQ``): the ids a process fetched from Q and has not
  acknowledged.

Every module that reads or writes these keys (queue depths, dead letters, the worker census,
recovery's message probe) asks this one for their names, so an upgrade of Dramatiq that moves a
key changes one file, and a broker with another namespace is read right everywhere.

**Alive.** A live worker's consumer threads poll Redis at least every ``dramatiq_worker_timeout``
(1 s), and its delay-queue consumer keeps polling while every worker thread is busy in a call,
so a worker's heartbeat is at most a second or two old while it lives. A process whose heartbeat
is older than ``WORKER_SILENCE_SECONDS`` (15 s) is dead or frozen: the census shows it dead and
recovery re-sends the messages it holds. (Dramatiq itself waits for its own heartbeat timeout,
60 s, and a random maintenance pass before it hands them to others.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis
from dramatiq.common import dq_name, xq_name

__all__ = [
    "DEFAULT_NAMESPACE", "acks_keys", "beat", "dead_key", "dead_messages_key", "delayed_key",
    "delayed_messages_key", "heartbeats", "is_alive", "live_processes", "messages_key", "now_ms",
    "queue_key",
]

#: Dramatiq's default key namespace (``RedisBroker(namespace=...)``).
DEFAULT_NAMESPACE = "dramatiq"
_HEARTBEATS = "__heartbeats__"
_ACKS = "__acks__"
_MESSAGES = ".msgs"


def queue_key(queue: str, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The list of ``queue``'s waiting message ids: ``dramatiq:posting``."""
    return f"{namespace}:{queue}"


def messages_key(queue: str, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The hash of ``queue``'s unacknowledged messages: ``dramatiq:posting.msgs``."""
    return f"{namespace}:{queue}{_MESSAGES}"


def delayed_key(queue: str, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The list of ``queue``'s delayed message ids: ``dramatiq:posting.DQ``."""
    return queue_key(dq_name(queue), namespace=namespace)


def delayed_messages_key(queue: str, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The hash of ``queue``'s delayed messages (the delayed count): ``dramatiq:posting.DQ.msgs``."""
    return messages_key(dq_name(queue), namespace=namespace)


def dead_key(queue: str, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The sorted set of ``queue``'s dead letters by time of death: ``dramatiq:posting.XQ``."""
    return queue_key(xq_name(queue), namespace=namespace)


def dead_messages_key(queue: str, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The hash of ``queue``'s dead letters: ``dramatiq:posting.XQ.msgs``."""
    return messages_key(xq_name(queue), namespace=namespace)


def acks_keys(client: redis.Redis, queue: str, *,
              namespace: str = DEFAULT_NAMESPACE) -> Iterator[tuple[str, bytes]]:
    """(broker id, key) of every set of ids a process holds from ``queue`` or its delay queue."""
    prefix = f"{namespace}:{_ACKS}."
    for suffix in (queue, dq_name(queue)):
        for key in client.scan_iter(match=f"{prefix}*.{suffix}", count=1000):
            yield key.decode()[len(prefix):-(len(suffix) + 1)], key


def now_ms() -> int:
    """The wall clock in Dramatiq's heartbeat unit (ms since the epoch)."""
    return int(time.time() * 1000)


def beat(client: redis.Redis, broker_id: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
    """Write ``broker_id``'s heartbeat now, as Dramatiq does on each command."""
    client.zadd(f"{namespace}:{_HEARTBEATS}", {broker_id: now_ms()})


def heartbeats(client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE) -> dict[str, float]:
    """Every process's last heartbeat (ms), by broker id: one read of a small sorted set."""
    entries: Any = client.zrange(f"{namespace}:{_HEARTBEATS}", 0, -1, withscores=True)
    return {member.decode(): score for member, score in entries}


def is_alive(last_beat_ms: float | None, silence_seconds: float, *, at_ms: float) -> bool:
    """The liveness rule: a heartbeat younger than ``silence_seconds`` at ``at_ms``."""
    return last_beat_ms is not None and at_ms - last_beat_ms <= silence_seconds * 1000


def live_processes(client: redis.Redis, silence_seconds: float, *, at_ms: float | None = None,
                   namespace: str = DEFAULT_NAMESPACE) -> set[str]:
    """The broker ids of every process alive by :func:`is_alive` (workers and senders)."""
    at = now_ms() if at_ms is None else at_ms
    return {broker_id for broker_id, last in heartbeats(client, namespace=namespace).items()
            if is_alive(last, silence_seconds, at_ms=at)}
