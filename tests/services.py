"""Real PostgreSQL and Redis for the tests: a throwaway database per run, a Redis db per run.

Outside CI a missing service skips the tests that need it; under ``CI=true`` it fails them,
so a green CI always means the real services were exercised.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

#: Where the admin connection for creating throwaway databases goes.
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
#: Redis databases a test process owns: its own and the next two (end-to-end modules give
#: their workers a database of their own beside the test one).
DBS_PER_PROCESS = 3


def _redis_url_for_this_process() -> str:
    """``TEST_REDIS_URL``, moved by :data:`DBS_PER_PROCESS` per pytest-xdist worker (gw0, gw1...)
    so parallel test processes never flush or read each other's database."""
    base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return base
    prefix, db = base.rsplit("/", 1)
    return f"{prefix}/{(int(db) + DBS_PER_PROCESS * int(worker[2:])) % 16}"


#: The Redis server used by broker, queue and rate-limit tests.
TEST_REDIS_URL = _redis_url_for_this_process()


def unavailable(service: str, error: Exception) -> None:
    message = f"{service} is not reachable: {error}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (under CI a missing service is a failure)")
    pytest.skip(message)


def create_pg_database() -> str:
    """Create an empty database and return its URL."""
    name = f"autopilot_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        unavailable("PostgreSQL", exc)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def redis_client():  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        unavailable("Redis", exc)
    return client
