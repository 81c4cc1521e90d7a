"""Why a message was dead-lettered, kept beside it for ``autopilot queues dead``.

Dramatiq moves the message as it was *enqueued* to the dead-letter set, so a message that fails
on its first attempt (``max_retries=0``, like the publish actors) carries no traceback there: the
Retries middleware wrote it on the in-memory copy only. :class:`FailureNotes` records the
exception of every message that fails for good under ``autopilot:dead:<redis message id>``, with
secrets masked and the dead-letter TTL, and :func:`failure_notes` reads them back.
"""

from __future__ import annotations

import traceback
from typing import Any

import dramatiq
import redis

from app.ops.masking import mask_text

#: Where a dead letter's failure is kept, by Dramatiq's per-enqueue message id.
NOTE_KEY = "autopilot:dead:{id}"
#: Kept as long as Dramatiq keeps dead letters (its DEFAULT_DEAD_MESSAGE_TTL), in seconds.
DEFAULT_NOTE_TTL_SECONDS = 7 * 24 * 3600
#: Traceback frames kept: the innermost ones say where it failed.
DEFAULT_FRAMES = 2


def describe(exception: BaseException) -> str:
    """The innermost frames and the exception line, secrets masked."""
    frames = traceback.extract_tb(exception.__traceback__)[-DEFAULT_FRAMES:]
    where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames)
    line = traceback.format_exception_only(type(exception), exception)[-1].strip()
    return mask_text(f"{line} (at {where})" if where else line)


class FailureNotes(dramatiq.Middleware):
    """Notes the exception of each message that failed for good (it is about to be nacked)."""

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        client = getattr(broker, "client", None)
        redis_id = message.options.get("redis_message_id")
        if exception is None or not message.failed or client is None or redis_id is None:
            return
        try:
            client.set(NOTE_KEY.format(id=redis_id), describe(exception), ex=DEFAULT_NOTE_TTL_SECONDS)
        except redis.RedisError:
            pass  # the dead letter itself is what matters; its note is a courtesy



def failure_notes(client: redis.Redis, ids: list[str]) -> dict[str, str]:
    """The recorded failure of each dead letter id that has one."""
    if not ids:
        return {}
    values: Any = client.mget([NOTE_KEY.format(id=i) for i in ids])
    return {i: v.decode() for i, v in zip(ids, values, strict=True) if v is not None}
