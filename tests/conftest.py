"""Shared fixtures: real PostgreSQL (migrated once per run), SQLite, Redis, a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.clock import SettableClock
from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.db import make_engine, make_session_factory
from app.models import Base
from app.providers.openai_compat import CAPABILITIES
from app.runtime import Runtime
from tests import services

# One chromium for the whole run (a second Playwright in the process fails): its fixture lives here.
from tests.browser import browser, screenshots  # noqa: F401


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database migrated to head by Alembic (not create_all)."""
    url = services.create_pg_database()
    migrate.upgrade(url)
    yield url
    services.drop_pg_database(url)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """The run's PostgreSQL database, emptied before each test."""
    engine = make_engine(pg_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'autopilot.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Both databases: for behaviour that must hold on the embedded and the production path."""
    return request.getfixturevalue("pg_engine" if request.param == "postgresql" else "sqlite_engine")


@pytest.fixture
def sessions(pg_engine: Engine) -> sessionmaker[Session]:
    """A session factory on PostgreSQL."""
    return make_session_factory(pg_engine)


@pytest.fixture
def redis_url() -> str:
    client = services.redis_client()
    client.flushdb()
    return services.TEST_REDIS_URL


@pytest.fixture
def vault() -> TokenVault:
    return TokenVault([generate_key()])


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="sqlite://", token_encryption_keys=(generate_key(),))


@pytest.fixture(autouse=True)
def forget_openai_servers() -> Iterator[None]:
    """What OpenAI-compatible servers support is remembered per base URL for the process; a
    fake's ephemeral port is reused by later fakes, so each test starts with no memory."""
    CAPABILITIES.forget()
    yield
    CAPABILITIES.forget()


@pytest.fixture
def clock(now: datetime) -> SettableClock:
    """The runtime's clock, standing at ``now`` until a test moves it."""
    return SettableClock(now)


@pytest.fixture
def runtime(pg_url: str, pg_engine: Engine, clock: SettableClock) -> Runtime:
    """A runtime on the run's PostgreSQL database, offline providers, the settable clock."""
    settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),))
    return Runtime.from_settings(settings, clock=clock)


@pytest.fixture
def now() -> datetime:
    """A fixed instant: Thursday 26 November 2026, 06:00 UTC (a daily generation slot)."""
    return datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
