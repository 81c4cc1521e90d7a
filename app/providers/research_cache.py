"""Where search results are kept for the day, so users sharing a topic share one paid call.

A cache maps a key (endpoint, query, locale, recency: see :mod:`app.providers.serper`) and a UTC
day ``YYYY-MM-DD`` to a list of JSON-serialisable dicts. An entry from another day is a miss: news
goes stale, and the key is reused the next day by overwriting the row.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.clock import utcnow
from app.models import ResearchCache


class ResearchCacheStore(Protocol):
    def get(self, key: str, day: str) -> list[dict[str, Any]] | None:
        """The items stored for ``key`` on ``day``, or None on a miss."""
        ...

    def put(self, key: str, day: str, items: list[dict[str, Any]]) -> None:
        """Store ``items`` for ``key`` on ``day``; a concurrent writer of the same entry may win."""
        ...


class MemoryResearchCache:
    """A per-process cache: for tests, the offline demo and one-off CLI runs."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, day: str) -> list[dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] != day:
            return None
        return [dict(item) for item in entry[1]]

    def put(self, key: str, day: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._entries[key] = (day, [dict(item) for item in items])


class DbResearchCache:
    """The shared cache in the ``research_cache`` table: one row per key, holding its latest day.

    Workers of many processes research the same topics at the same minute, so two may insert the
    same key at once; the loser's IntegrityError is swallowed since the winner stored equivalent
    results.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def get(self, key: str, day: str) -> list[dict[str, Any]] | None:
        with self.session_factory() as session:
            row = session.scalars(
                select(ResearchCache).where(
                    ResearchCache.cache_key == key, ResearchCache.day == day
                )
            ).one_or_none()
            return list(row.payload) if row is not None else None

    def put(self, key: str, day: str, items: list[dict[str, Any]]) -> None:
        with self.session_factory() as session:
            try:
                row = session.scalars(
                    select(ResearchCache).where(ResearchCache.cache_key == key)
                ).one_or_none()
                if row is None:
                    session.add(ResearchCache(cache_key=key, day=day, payload=items))
                elif row.day != day:
                    # Yesterday's entry: the key is unique, so today's results replace it.
                    row.day, row.payload, row.created_at = day, items, utcnow()
                session.commit()
            except IntegrityError:
                session.rollback()
