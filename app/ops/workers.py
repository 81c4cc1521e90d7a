"""Live worker processes, from Dramatiq's heartbeats and our own registry of what each consumes.

Every process that talks to Dramatiq's Redis broker writes its broker id and the time into
Dramatiq's heartbeats on each command (:mod:`app.redis_layout`); consumers poll at least every
second while idle, so a worker's entry is fresh while it lives. Senders (the scheduler, the
admin, the CLI) write there too, and the heartbeat says nothing about queues. So each worker
process also registers itself at boot in ``autopilot:workers`` (broker id -> host, pid, queues,
threads) through the :class:`WorkerRegistry` middleware, and removes itself at shutdown. A live
worker is a registered process alive by :func:`app.redis_layout.is_alive`: the same rule
recovery applies before it re-sends a silent worker's messages.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
from dramatiq.common import q_name

from app.redis_layout import DEFAULT_NAMESPACE, beat, heartbeats, is_alive, now_ms

#: The hash of registered worker processes: broker id -> JSON description.
REGISTRY_KEY = "autopilot:workers"
#: Registry entries of processes silent this long are pruned at the next worker boot (ms).
DEFAULT_PRUNE_AFTER_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class WorkerProcess:
    """One worker process as the operator sees it."""

    broker_id: str
    host: str
    pid: int
    #: The named queues it consumes; every declared queue when started without ``-Q``.
    queues: tuple[str, ...]
    threads: int
    started_at: datetime
    last_seen: datetime | None
    alive: bool

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "queues": list(self.queues)}


@dataclass(frozen=True)
class WorkerCensus:
    workers: list[WorkerProcess]
    #: Processes with a fresh heartbeat that are not registered workers (senders: the scheduler,
    #: the admin, commands; or workers started without the registry middleware).
    other_live_processes: int

    @property
    def live(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive]

    def consumers_of(self, queue: str) -> list[WorkerProcess]:
        return [w for w in self.live if queue in w.queues]


class WorkerRegistry(dramatiq.Middleware):
    """Registers each worker process, with the queues it consumes, for ``autopilot workers``."""

    def __init__(self, *, prune_after_ms: int = DEFAULT_PRUNE_AFTER_MS) -> None:
        self.prune_after_ms = prune_after_ms

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        client = getattr(broker, "client", None)
        if client is None:
            return
        named = sorted({q_name(q) for q in broker.get_declared_queues()})
        queues = sorted(worker.consumer_whitelist or named)
        entry = {"host": socket.gethostname(), "pid": os.getpid(), "queues": queues,
                 "threads": worker.worker_threads, "started_at": datetime.now(UTC).isoformat()}
        namespace = getattr(broker, "namespace", DEFAULT_NAMESPACE)
        prune(client, namespace=namespace, older_than_ms=self.prune_after_ms)
        client.hset(REGISTRY_KEY, broker.broker_id, json.dumps(entry))  # type: ignore[attr-defined]
        # Heartbeat now, so the process counts as live before its consumers' first poll.
        beat(client, broker.broker_id, namespace=namespace)  # type: ignore[attr-defined]

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        client = getattr(broker, "client", None)
        if client is not None:
            try:
                client.hdel(REGISTRY_KEY, broker.broker_id)  # type: ignore[attr-defined]
            except redis.RedisError:
                pass  # a stale entry is pruned later; shutdown must not fail on it


def prune(client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE,
          older_than_ms: int = DEFAULT_PRUNE_AFTER_MS) -> int:
    """Forget registered processes silent for longer than ``older_than_ms``."""
    at = now_ms()
    keys: Any = client.hkeys(REGISTRY_KEY)
    ids = [i.decode() for i in keys]
    if not ids:
        return 0
    beats = heartbeats(client, namespace=namespace)
    stale = [i for i in ids if not is_alive(beats.get(i), older_than_ms / 1000, at_ms=at)]
    return int(client.hdel(REGISTRY_KEY, *stale)) if stale else 0


def census(client: redis.Redis, *, silence_seconds: float, at_ms: int | None = None,
           namespace: str = DEFAULT_NAMESPACE) -> WorkerCensus:
    """Registered workers (alive or lately dead) and the count of other live processes.

    ``silence_seconds``: ``WORKER_SILENCE_SECONDS``, the window of the liveness rule.
    """
    at = now_ms() if at_ms is None else at_ms
    registered: Any = client.hgetall(REGISTRY_KEY)
    beats = heartbeats(client, namespace=namespace)
    workers: list[WorkerProcess] = []
    for broker_id, raw in registered.items():
        entry = json.loads(raw)
        bid = broker_id.decode()
        last = beats.get(bid)
        workers.append(WorkerProcess(
            broker_id=bid, host=entry["host"], pid=int(entry["pid"]), queues=tuple(entry["queues"]),
            threads=int(entry["threads"]), started_at=datetime.fromisoformat(entry["started_at"]),
            last_seen=datetime.fromtimestamp(last / 1000, UTC) if last is not None else None,
            alive=is_alive(last, silence_seconds, at_ms=at)))
    workers.sort(key=lambda w: (not w.alive, w.host, w.pid))
    registered_ids = {w.broker_id for w in workers}
    others = sum(1 for bid, last in beats.items()
                 if bid not in registered_ids and is_alive(last, silence_seconds, at_ms=at))
    return WorkerCensus(workers, others)
