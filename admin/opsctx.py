"""What the operations parts of the admin share: settings, a Redis client, read sessions.

Kept on ``app.extensions["autopilot_ops"]`` by :func:`init_app`, beside the admin's database
handle. Reads go to ``DATABASE_REPLICA_URL`` when set (figures can lag the primary by the
replication delay; actions always write to the primary).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory

#: The key of the operations handle in ``app.extensions``.
EXTENSION_KEY = "autopilot_ops"


@dataclass
class OpsContext:
    settings: Settings
    read_sessions: sessionmaker[Session]
    _client: redis.Redis | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _broker: Any = None

    def client(self) -> redis.Redis | None:
        """The broker's Redis, or None on the in-process broker (nothing to read)."""
        if not self.settings.redis_url:
            return None
        with self._lock:
            if self._client is None:
                from app.redisconn import redis_client

                self._client = redis_client(self.settings.redis_url)
            return self._client

    def broker(self) -> Any:
        """A Dramatiq broker on the same Redis, for the messages the page sends (re-runs)."""
        with self._lock:
            if self._broker is None:
                from app.broker import build_broker

                self._broker = build_broker(self.settings)
            return self._broker


def ops() -> OpsContext:
    return current_app.extensions[EXTENSION_KEY]


def init_app(app: Flask, write_sessions: sessionmaker[Session]) -> OpsContext:
    """Settings from the app's config (tests) or the environment, with its DATABASE_URL and REDIS_URL."""
    base = app.config.get("AUTOPILOT_SETTINGS") or get_settings()
    settings = Settings(**{**base.__dict__, "database_url": app.config["DATABASE_URL"],
                           "redis_url": app.config.get("REDIS_URL", base.redis_url)})
    if settings.database_replica_url:
        read = make_session_factory(make_engine(settings.database_replica_url))
    else:
        read = write_sessions
    context = OpsContext(settings, read)
    app.extensions[EXTENSION_KEY] = context
    return context
