"""The operations tests' harness: the CLI on real PostgreSQL and Redis, real worker processes.

Shared by the unit-level tests of app/ops (tests/ops) and the end-to-end ones that start
workers, a Sentinel or a replica (tests/e2e/ops); each package's conftest exposes the
``ops`` fixture.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from click.testing import CliRunner, Result

from app.broker import build_broker
from app.cli import cli
from app.config import Settings, get_settings
from app.crypto import generate_key
from app.models import JobRun
from tests.workers import Worker, start_worker

KEY = generate_key()


@dataclass
class Ops:
    """One test's world: the settings every process shares, a broker and a Redis client on them."""

    env: dict[str, str]
    settings: Settings
    client: redis.Redis
    broker: dramatiq.Broker
    tmp: Path
    _workers: list[Worker] = field(default_factory=list)

    def cli(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=True)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code in (0, 1), (result.output, result.exception)
        return json.loads(result.stdout)

    def send(self, queue: str, actor: str, *args: Any, delay: int | None = None) -> None:
        self.broker.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=args, kwargs={},
                                             options={}), delay=delay)

    def start_worker(self, *queues: str, processes: int = 1, threads: int = 2) -> Worker:
        log = self.tmp / f"worker-{'-'.join(queues)}-{time.monotonic_ns()}.log"
        worker = start_worker(self.env, log, *queues, processes=processes, threads=threads)
        self._workers.append(worker)
        return worker

    def tick(self, at: datetime, *, job: str = "dispatch_due_posts", status: str = "succeeded") -> None:
        """A claimed run of ``job`` at ``at`` (what the scheduler and a worker leave behind)."""
        from app.db import make_engine, make_session_factory

        factory = make_session_factory(make_engine(self.settings.database_url))
        with factory() as session, session.begin():
            session.add(JobRun(job=job, slot=at.replace(second=0, microsecond=0), claimed_at=at,
                               finished_at=at if status != "running" else None, status=status))
        factory.kw["bind"].dispose()



@pytest.fixture
def ops(pg_url: str, pg_engine, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Ops]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("X_", "LINKEDIN_", "OPENAI_", "SERPER_", "SENTRY_", "REDIS_", "OPS_"))}
    # A worker killed without shutdown counts as dead after 2 s instead of 15 (and Dramatiq
    # itself gives up on it after 2 s instead of a minute).
    env.update({"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "TOKEN_ENCRYPTION_KEYS": KEY,
                "REDIS_HEARTBEAT_TIMEOUT_MS": "2000", "WORKER_SILENCE_SECONDS": "2"})
    for name in [n for n in os.environ if n.startswith(("REDIS_", "OPS_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = Settings.from_env(env)
    broker = build_broker(settings)
    world = Ops(env, settings, redis.Redis.from_url(redis_url), broker, tmp_path)
    try:
        yield world
    finally:
        for worker in world._workers:
            worker.stop()
        broker.close()
        world.client.close()
        get_settings.cache_clear()
