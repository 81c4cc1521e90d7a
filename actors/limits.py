"""Our own posting limits per platform and account, on Redis: a whole batch in one round trip.

On top of the platform's own 429 handling, these keep us under the limits the platform registry
states (X: per 15 minutes; LinkedIn: per day) even across many workers. They are bucket limits:
at most ``limit`` posts per account in each fixed window (``bucket``), counted in one Redis key
per account and window.

The counting is Dramatiq's :class:`~dramatiq.rate_limits.BucketRateLimiter`'s, with the same
keys (``publish:<platform>:<user id>@<window start ms>``), so both can count against the same
budget. What differs is the cost: Dramatiq's limiter takes one SET plus a WATCH/MULTI retry
loop per post, which a burst of five posts per account at one second turns into a storm of
retries; :class:`PostingLimits` decides every post of a batch in one atomic Lua script.
(Not Dramatiq's WindowRateLimiter either: it WATCHes one key per second of its window, 86,400
for LinkedIn's daily limit; seen: 47 s per call.)
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Sequence

import dramatiq
import redis

from app.config import Settings
from app.platforms import get_platform
from app.workflows.publish import Allow

__all__ = ["PostingLimits", "bucket_key", "within_limits"]

# KEYS: one bucket key per account; ARGV: per key, (posts wanted, limit, window ms).
# Returns, per key, how many of the wanted posts fit under the limit; counts them.
_TAKE = """
local granted = {}
for i, key in ipairs(KEYS) do
  local want = tonumber(ARGV[3 * i - 2])
  local limit = tonumber(ARGV[3 * i - 1])
  local used = tonumber(redis.call('GET', key) or '0')
  local grant = math.max(0, math.min(want, limit - used))
  if grant > 0 then
    redis.call('SET', key, used + grant, 'PX', tonumber(ARGV[3 * i]))
  end
  granted[i] = grant
end
return granted
"""


def bucket_key(platform: str, user_id: int, now_ms: int, bucket_ms: int) -> str:
    """The Redis key counting an account's posts in the window holding ``now_ms``."""
    return f"publish:{platform}:{user_id}@{now_ms - now_ms % bucket_ms}"


class PostingLimits:
    """``allow(targets)``: which of these (platform, user id) publishes fit our limits now."""

    def __init__(self, client: redis.Redis, settings: Settings, *,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self._take = client.register_script(_TAKE)
        self._settings = settings
        self._clock_ms = clock_ms

    def allow(self, targets: Sequence[tuple[str, int]]) -> list[bool]:
        """One verdict per target, in order: within one account, the first ones win."""
        if not targets:
            return []
        now_ms = self._clock_ms()
        wanted = Counter(targets)
        accounts = list(wanted)
        args: list[int] = []
        keys = []
        for platform, user_id in accounts:
            entry = get_platform(platform)
            bucket_ms = int(entry.posting_window.total_seconds() * 1000)
            keys.append(bucket_key(platform, user_id, now_ms, bucket_ms))
            args += [wanted[(platform, user_id)], getattr(self._settings, entry.posting_limit_setting), bucket_ms]
        granted = dict(zip(accounts, (int(n) for n in self._take(keys=keys, args=args)), strict=True))
        verdicts = []
        for target in targets:
            verdicts.append(granted[target] > 0)
            granted[target] -= 1
        return verdicts


_limits_lock = threading.Lock()
#: One per Redis client (the process's broker's), its Lua script registered once.
_limits: weakref.WeakKeyDictionary[object, PostingLimits] = weakref.WeakKeyDictionary()


def within_limits(settings: Settings) -> Allow | None:
    """The workflow's ``allow``: our posting limits on the broker's Redis; None in-process."""
    client = getattr(dramatiq.get_broker(), "client", None)
    if client is None:
        return None
    with _limits_lock:
        limits = _limits.get(client)
        if limits is None:
            limits = _limits[client] = PostingLimits(client, settings)
    return limits.allow
