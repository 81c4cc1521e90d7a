"""A runtime on the test PostgreSQL database with offline providers and a settable clock."""

from __future__ import annotations

import pytest

from app.clock import SettableClock
from app.config import Settings
from app.crypto import generate_key
from app.runtime import Runtime
from app.users import create_user


@pytest.fixture
def clock(now) -> SettableClock:
    return SettableClock(now)


@pytest.fixture
def runtime(pg_url, pg_engine, clock) -> Runtime:
    settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),))
    return Runtime.from_settings(settings, clock=clock)


def make_users(runtime: Runtime, count: int, **overrides) -> list[int]:
    ids = []
    with runtime.session_factory() as session, session.begin():
        for i in range(count):
            raw = {"timezone": "America/New_York", "preferred_platforms": ["twitter", "linkedin"],
                   "posting_times": {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]},
                   "content_frequency": 14, "topics": ["python"], "enable_autonomous_mode": True, **overrides}
            ids.append(create_user(session, f"user{i}@example.com", raw).id)
    return ids
