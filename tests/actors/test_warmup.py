"""A worker process builds its runtime as it boots; threads asking at once build one."""

from __future__ import annotations

import threading
import time

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from actors import warmup
from app import runtime as runtime_module


def test_the_runtime_is_built_before_the_worker_threads_start(monkeypatch):
    events: list[str] = []
    monkeypatch.setattr(warmup, "get_runtime", lambda: events.append("runtime built"))
    broker = StubBroker(middleware=[warmup.WarmRuntime()])
    broker.declare_queue("default")

    @dramatiq.actor(broker=broker)
    def job() -> None:
        events.append("message")

    job.send()
    worker = Worker(broker, worker_timeout=100)
    worker.start()
    try:
        broker.join("default", fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    assert events == ["runtime built", "message"]


def test_threads_asking_for_the_runtime_together_build_one(monkeypatch):
    builds: list[object] = []

    def slow_build(settings, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.05)
        builds.append(object())
        return builds[-1]

    monkeypatch.setattr(runtime_module.Runtime, "from_settings", staticmethod(slow_build))
    monkeypatch.setattr(runtime_module, "get_settings", lambda: None)
    runtime_module.set_runtime(None)
    seen: list[object] = []
    try:
        threads = [threading.Thread(target=lambda: seen.append(runtime_module.get_runtime())) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        runtime_module.set_runtime(None)
    assert len(builds) == 1 and seen == builds * 4
