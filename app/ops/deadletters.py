"""Dead letters: list them (secrets masked), put them back on their queue, or purge them.

Dramatiq moves a message that failed for good (retries exhausted, or ``max_retries=0``) from
its queue's message hash to the queue's dead-letter set and hash (:mod:`app.redis_layout`
names them). Requeueing moves a message back the way Dramatiq enqueues one
(hash entry, then list push) with its retry count reset, and purging deletes it; each move is a
Lua script, atomic per message, so two operators acting at once move each message once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from app.ops.failures import NOTE_KEY, failure_notes
from app.ops.masking import mask_arguments, mask_text
from app.redis_layout import DEFAULT_NAMESPACE, dead_key, dead_messages_key, messages_key, queue_key

#: Lines of a traceback kept as a dead letter's failure (the last ones: where and why).
DEFAULT_FAILURE_LINES = 3
#: Dead letters listed at most per call.
DEFAULT_LIMIT = 100

# KEYS: dead set, dead hash, message hash, queue list ; ARGV: message id, new message data
_REQUEUE = """
if redis.call('zrem', KEYS[1], ARGV[1]) == 1 then
  redis.call('hdel', KEYS[2], ARGV[1])
  redis.call('hset', KEYS[3], ARGV[1], ARGV[2])
  redis.call('rpush', KEYS[4], ARGV[1])
  return 1
end
return 0
"""
# KEYS: dead set, dead hash ; ARGV: message id
_PURGE = """
if redis.call('zrem', KEYS[1], ARGV[1]) == 1 then
  redis.call('hdel', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as an operator may see it (arguments masked)."""

    id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    message_id: str
    retries: int
    died_at: datetime
    failure: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failure(options: dict[str, Any], note: str | None) -> str:
    if note:
        return note
    trace = options.get("traceback") or ""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    if not lines:
        return "failed (no traceback recorded)"
    return mask_text("\n".join(lines[-DEFAULT_FAILURE_LINES:]))


def dead_letters(client: redis.Redis, queue: str, *, parameters: Mapping[str, Sequence[str]],
                 limit: int = DEFAULT_LIMIT, namespace: str = DEFAULT_NAMESPACE) -> list[DeadLetter]:
    """The queue's dead letters, most recent first, with secrets masked.

    ``parameters``: each actor's positional parameter names (:data:`actors.messages.ACTOR_PARAMETERS`),
    so an argument is masked by its name as well as by its shape.
    """
    entries: Any = client.zrevrange(dead_key(queue, namespace=namespace), 0, limit - 1, withscores=True)
    if not entries:
        return []
    ids = [member.decode() for member, _ in entries]
    raw: Any = client.hmget(dead_messages_key(queue, namespace=namespace), ids)
    notes = failure_notes(client, ids)
    letters = []
    for (redis_id, score), data in zip(zip(ids, (s for _, s in entries), strict=True), raw, strict=True):
        if data is None:  # purged between the two reads
            continue
        message = json.loads(data)
        args, kwargs = mask_arguments(message.get("args", []), message.get("kwargs", {}),
                                      list(parameters.get(message.get("actor_name", ""), ())))
        options = message.get("options", {})
        letters.append(DeadLetter(
            id=redis_id, queue=queue, actor=message.get("actor_name", "?"), args=args, kwargs=kwargs,
            message_id=message.get("message_id", ""), retries=int(options.get("retries", 0)),
            died_at=datetime.fromtimestamp(score / 1000, UTC), failure=_failure(options, notes.get(redis_id))))
    return letters


def _select(client: redis.Redis, queue: str, ids: list[str] | None, namespace: str) -> list[str]:
    if ids is not None:
        return ids
    members: Any = client.zrange(dead_key(queue, namespace=namespace), 0, -1)
    return [m.decode() for m in members]


def requeue(client: redis.Redis, queue: str, ids: list[str] | None = None, *,
            namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    """Put dead letters (all, or those ``ids``) back at the end of their queue; the ids moved.

    The retry count and traceback are reset so the message gets its actor's full retries again.
    """
    script = client.register_script(_REQUEUE)
    moved = []
    xq, xq_msgs = dead_key(queue, namespace=namespace), dead_messages_key(queue, namespace=namespace)
    for redis_id in _select(client, queue, ids, namespace):
        data = client.hget(xq_msgs, redis_id)
        if data is None:
            continue
        message = json.loads(data)
        options = message.setdefault("options", {})
        for stale in ("retries", "traceback", "requeue_timestamp", "eta"):
            options.pop(stale, None)
        message["queue_name"] = queue
        if script(keys=[xq, xq_msgs, messages_key(queue, namespace=namespace),
                         queue_key(queue, namespace=namespace)],
                  args=[redis_id, json.dumps(message, separators=(",", ":"))]):
            moved.append(redis_id)
    if moved:
        client.delete(*[NOTE_KEY.format(id=i) for i in moved])
    return moved


def purge(client: redis.Redis, queue: str, ids: list[str] | None = None, *,
          namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    """Delete dead letters (all, or those ``ids``); the ids deleted."""
    script = client.register_script(_PURGE)
    xq, xq_msgs = dead_key(queue, namespace=namespace), dead_messages_key(queue, namespace=namespace)
    purged = [i for i in _select(client, queue, ids, namespace) if script(keys=[xq, xq_msgs], args=[i])]
    if purged:
        client.delete(*[NOTE_KEY.format(id=i) for i in purged])
    return purged
