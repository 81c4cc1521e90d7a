"""What workflows run with: settings, a session factory, providers, the token vault, a clock.

Actors fetch the process's runtime with :func:`get_runtime`; tests and the demo install
their own with :func:`set_runtime` (for example with a fast-forwarded clock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from app.clock import Clock, utcnow
from app.config import Settings, get_settings
from app.crypto import TokenVault
from app.db import get_engine, make_session_factory
from app.media.storage import MediaStorage, storage_from_settings
from app.providers.registry import Providers, build_providers

_building_media = threading.Lock()


@dataclass
class Runtime:
    settings: Settings
    session_factory: sessionmaker[Session]
    providers: Providers
    vault: TokenVault
    clock: Clock = field(default=utcnow)
    #: Sessions on DATABASE_REPLICA_URL for read-only scans (metrics due, report figures);
    #: None: the primary. Replica reads may lag by the replication delay.
    replica_session_factory: sessionmaker[Session] | None = None
    #: Where the media library's bytes are (S3 or a directory); None: built from the settings
    #: on first use.
    media: MediaStorage | None = None

    def now(self) -> datetime:
        return self.clock()

    @property
    def media_storage(self) -> MediaStorage:
        """The media storage, built once from the settings when none was given."""
        if self.media is None:
            with _building_media:
                if self.media is None:
                    self.media = storage_from_settings(self.settings)
        return self.media

    @property
    def read_session_factory(self) -> sessionmaker[Session]:
        """Where read-only queries that tolerate replication lag go: the replica if configured."""
        return self.replica_session_factory or self.session_factory

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> Runtime:
        factory = make_session_factory(get_engine(settings.database_url))
        replica = (make_session_factory(get_engine(settings.database_replica_url))
                   if settings.database_replica_url else None)
        return cls(settings=settings, session_factory=factory,
                   providers=build_providers(settings, factory),
                   vault=TokenVault.from_settings(settings), clock=clock, replica_session_factory=replica)


_runtime: Runtime | None = None
_building = threading.Lock()


def get_runtime() -> Runtime:
    """The process's runtime, built from the environment on first use, once.

    Worker processes build it at boot (``actors.warmup.WarmRuntime``); the lock keeps the threads of a
    process that meets its first burst from each building one (seen: 16 threads each creating
    HTTP clients and SSL contexts while their posts waited).
    """
    global _runtime
    if _runtime is None:
        with _building:
            if _runtime is None:
                _runtime = Runtime.from_settings(get_settings())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime (tests, demo); None resets to the environment's on next use."""
    global _runtime
    _runtime = runtime
