"""The admin's one extension: its settings, database and broker, on ``app.extensions["autopilot"]``.

Built once per app by :func:`init_app`, as flaskr registers its database: each app built by
:func:`admin.create_app` gets its own Settings, engine and scoped session, so two apps in one
process (tests do this) never share a connection, an identity map or a configuration. The
scoped session gives each request one session, removed when the app context ends. Figures are
read through ``read_sessions``: ``DATABASE_REPLICA_URL`` when set (they can lag the primary by
the replication delay; actions always write to the primary).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from app.config import Settings
from app.db import make_engine, make_session_factory

#: The key under which the extension lives in ``app.extensions``.
EXTENSION_KEY = "autopilot"


@dataclass
class AdminExtension:
    """Settings, engine, session factories and the per-request scoped session of one admin app."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    db: scoped_session[Session]
    #: Where figures are read: the replica's sessions when one is configured, else the primary's.
    read_sessions: sessionmaker[Session]
    _client: redis.Redis | None = None
    _broker: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
        """A Dramatiq broker on the same Redis, for the messages the admin sends (re-runs)."""
        with self._lock:
            if self._broker is None:
                from app.broker import build_broker

                self._broker = build_broker(self.settings)
            return self._broker


def init_app(app: Flask, settings: Settings) -> AdminExtension:
    """Build the app's extension from ``settings`` (its DATABASE_URL, replica and REDIS_URL)."""
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    db = scoped_session(factory)
    read = (make_session_factory(make_engine(settings.database_replica_url))
            if settings.database_replica_url else factory)
    extension = AdminExtension(settings, engine, factory, db, read)
    app.extensions[EXTENSION_KEY] = extension

    @app.teardown_appcontext
    def _remove_session(exc: BaseException | None) -> None:
        db.remove()

    return extension


def database() -> AdminExtension:
    """The current app's extension (raises outside an app context)."""
    return current_app.extensions[EXTENSION_KEY]


def db_session() -> scoped_session[Session]:
    """The current request's session."""
    return database().db
