"""Operations: what the broker, the workers and the scheduler are doing, and whether it is healthy.

Read by ``autopilot queues|workers|stats|check``, the admin's Operations page and ``/metrics``;
each module reads one source (Redis in Dramatiq's key layout, or the database) and returns
plain data, so the three faces show the same figures.
"""

from __future__ import annotations

import redis

from app.config import Settings
from app.ops.errors import BrokerUnavailable, OpsError, UnknownQueue
from app.queues import QUEUES

__all__ = ["BrokerUnavailable", "OpsError", "UnknownQueue", "broker_client", "require_queue"]


def broker_client(settings: Settings) -> redis.Redis:
    """The Redis client of the broker these settings name; refused for the in-process broker."""
    if not settings.redis_url:
        raise BrokerUnavailable("REDIS_URL is not set: the in-process broker keeps no state to inspect "
                                "(set REDIS_URL to the workers' Redis)")
    from app.redisconn import redis_client

    return redis_client(settings.redis_url)


def require_queue(queue: str) -> str:
    if queue not in QUEUES:
        raise UnknownQueue(queue, QUEUES)
    return queue
