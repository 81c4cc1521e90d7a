"""Is the message holding a post still alive? The broker's answer, for the recovery workflow.

A publish message's id is its post's claim token (:func:`actors.messages.send`). On Redis the
answer is read from Dramatiq's own bookkeeping (:mod:`app.redis_layout` names the keys): a
message is alive when its data is in its queue's message hash or delayed-message hash and it is
not held by a worker that is dead by :func:`app.redis_layout.is_alive` (heartbeat older than
``WORKER_SILENCE_SECONDS``, or missing). Dramatiq itself re-queues such messages only after its
own heartbeat timeout and a random maintenance pass; recovery re-sends them under a new token
instead, and the old message, should it run, finds the token changed.

The in-process broker answers with :class:`app.broker.MessagesInFlight`.
"""

from __future__ import annotations

from collections.abc import Collection

import dramatiq
from dramatiq.brokers.stub import StubBroker

from app.broker import MessagesInFlight
from app.intents import MessageProbe
from app.queues import Queue
from app.redis_layout import (
    DEFAULT_NAMESPACE,
    acks_keys,
    delayed_messages_key,
    live_processes,
    messages_key,
)

__all__ = ["RedisMessageProbe", "probe_for"]



class RedisMessageProbe:
    """Which message ids are alive in a Redis broker's ``queue`` (see the module docstring)."""

    def __init__(self, client, *, namespace: str = DEFAULT_NAMESPACE,  # type: ignore[no-untyped-def]
                 queue: str = Queue.POSTING, silence_seconds: float) -> None:
        self.client = client
        self.namespace = namespace
        self.queue = queue
        self.silence_seconds = silence_seconds

    def _dead_holdings(self) -> set[bytes]:
        """Redis message ids held by workers that are not alive (heartbeat stale or gone)."""
        live = live_processes(self.client, self.silence_seconds, namespace=self.namespace)
        dead_keys = [key for worker, key in acks_keys(self.client, self.queue, namespace=self.namespace)
                     if worker not in live]
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
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(messages_key(self.queue, namespace=self.namespace))
        pipe.hgetall(delayed_messages_key(self.queue, namespace=self.namespace))
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
        return RedisMessageProbe(client, namespace=getattr(broker, "namespace", DEFAULT_NAMESPACE),
                                 silence_seconds=silence_seconds)
    if isinstance(broker, StubBroker):
        for middleware in broker.middleware:
            if isinstance(middleware, MessagesInFlight):
                return middleware
    return None
