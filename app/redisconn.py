"""Redis connections from settings: a plain URL, or Sentinel for high availability.

``REDIS_URL`` takes either form:

* ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``): one server;
* ``redis+sentinel://[:password@]host:port[,host:port...]/master_name[/db]``: the master that
  the listed Sentinels currently name. The client asks the Sentinels again after a connection
  error, so a failover costs the workers a reconnect, not a restart.

Dramatiq's broker, the rate limiters and the operations reads all take their client from
:func:`redis_client`, so every part of the system follows the same master.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from app.errors import ConfigError

#: The URL scheme naming a Sentinel-managed master.
SENTINEL_SCHEME = "redis+sentinel"
#: Seconds to wait for a Sentinel or the master to answer before trying the next one.
DEFAULT_SOCKET_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class SentinelTarget:
    """Where a ``redis+sentinel://`` URL points: the Sentinels, the master's name, the db."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME + "://")


def parse_sentinel_url(url: str, *, variable: str = "REDIS_URL") -> SentinelTarget:
    """Read a ``redis+sentinel://`` URL; raise :class:`ConfigError` naming what is wrong."""
    parts = urlsplit(url)
    shown = url.replace(parts.password, "***") if parts.password else url
    if parts.scheme != SENTINEL_SCHEME:
        raise ConfigError(variable, shown, f"expected a {SENTINEL_SCHEME}:// URL")
    hosts = parts.netloc.rsplit("@", 1)[-1]
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(variable, shown, f"sentinel {item!r} is not host:port "
                              "(e.g. redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0)")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError(variable, shown, "no master name: add it as the path, e.g. .../mymaster/0")
    if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(variable, shown, "the path must be /master_name or /master_name/db")
    password = unquote(parts.password) if parts.password else None
    return SentinelTarget(tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0, password)


def redis_client(url: str, **options: Any) -> redis.Redis:
    """A client for ``url``: the Sentinel-named master, or the one server the URL names."""
    options.setdefault("socket_timeout", DEFAULT_SOCKET_TIMEOUT_SECONDS)
    options.setdefault("socket_connect_timeout", DEFAULT_SOCKET_TIMEOUT_SECONDS)
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs={
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"]})
    return sentinel.master_for(target.master, db=target.db, password=target.password, **options)
