"""Is the message holding a post still alive? The broker's answer, for the recovery workflow.

A publish message's id is its post's claim token (:func:`actors.messages.send`). On Redis the
answer is read from Dramatiq's own key layout (``dramatiq/brokers/redis/dispatch.lua``):

* ``<ns>:<queue>.msgs`` and ``<ns>:<queue>.DQ.msgs``: hashes of Redis message id -> encoded
  message, for every message enqueued and not yet acknowledged (waiting, delayed, or held);
* ``<ns>:__acks__.<worker>.<queue>``: the Redis ids a worker fetched and has not acknowledged
  (a delayed message sits in ``<queue>.DQ``'s set while the worker holds it until its eta);
* ``<ns>:__heartbeats__``: a sorted set of worker (broker) ids by last Redis command, in ms.

A message is alive when its data is in one of the two hashes and it is not held by a worker
whose heartbeat is older than ``WORKER_SILENCE_SECONDS`` (or missing). A live worker's consumer
threads poll Redis at least every ``dramatiq_worker_timeout`` (1 s) and the delay-queue consumer
keeps polling while every worker thread is busy, so a heartbeat silent for 15 s means a dead or
frozen process. Dramatiq itself re-queues such messages only after its own heartbeat timeout
and a random maintenance pass; recovery re-sends them under a new token instead, and the old
message, should it run, finds the token changed.

The in-process broker answers with :class:`app.broker.MessagesInFlight`.
"""

from __future__ import annotations

import time
from collections.abc import Collection

import dramatiq
from dramatiq.brokers.stub import StubBroker

from app.broker import MessagesInFlight
from app.intents import MessageProbe
from app.queues import Queue

__all__ = ["RedisMessageProbe", "probe_for"]



class RedisMessageProbe:
    """Which message ids are alive in a Redis broker's ``queue`` (see the module docstring)."""

    def __init__(self, client, *, namespace: str = "dramatiq",  # type: ignore[no-untyped-def]
                 queue: str = Queue.POSTING, silence_seconds: float) -> None:
        self.client = client
        self.namespace = namespace
        self.queue = queue
        self.silence_ms = silence_seconds * 1000

    def _dead_holdings(self) -> set[bytes]:
        """Redis message ids held by workers whose heartbeat is stale or gone."""
        ns = self.namespace
        live = {w.decode() for w in self.client.zrangebyscore(
            f"{ns}:__heartbeats__", time.time() * 1000 - self.silence_ms, "+inf")}
        prefix = f"{ns}:__acks__."
        dead_keys = []
        for suffix in (self.queue, f"{self.queue}.DQ"):
            for key in self.client.scan_iter(match=f"{prefix}*.{suffix}", count=1000):
                name = key.decode()
                worker = name[len(prefix):-(len(suffix) + 1)]
                if worker not in live:
                    dead_keys.append(key)
        held: set[bytes] = set()
        if dead_keys:
            pipe = self.client.pipeline(transaction=False)
            for key in dead_keys:
                pipe.smembers(key)
            for members in pipe.execute():
                held.update(members)
        return held

    def alive(self, message_ids: Collection[str]) -> set[str]:
        wanted = set(message_ids)
        if not wanted:
            return set()
        ns = self.namespace
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(f"{ns}:{self.queue}.msgs")
        pipe.hgetall(f"{ns}:{self.queue}.DQ.msgs")
        stored: list[dict[bytes, bytes]] = pipe.execute()
        dead = self._dead_holdings()
        found: set[str] = set()
        for messages in stored:
            for redis_id, data in messages.items():
                if redis_id in dead:
                    continue
                try:
                    message_id = dramatiq.Message.decode(data).message_id
                except Exception:  # noqa: BLE001 - an undecodable message holds no post
                    continue
                if message_id in wanted:
                    found.add(message_id)
        return found


def probe_for(broker: dramatiq.Broker, silence_seconds: float) -> MessageProbe | None:
    """The probe for ``broker``: Redis keys, or the in-process broker's own count; None if neither."""
    client = getattr(broker, "client", None)
    if client is not None:
        return RedisMessageProbe(client, namespace=getattr(broker, "namespace", "dramatiq"),
                                 silence_seconds=silence_seconds)
    if isinstance(broker, StubBroker):
        for middleware in broker.middleware:
            if isinstance(middleware, MessagesInFlight):
                return middleware
    return None
