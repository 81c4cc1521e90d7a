"""The per-user actors: a temporary provider failure is retried by Dramatiq, not logged as a failure."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq import Worker

import actors
from actors.messages import PER_USER_ACTORS
from app.config import Settings
from app.errors import RetryLater
from app.jobs.spec import PeriodicJob
from app.runtime import set_runtime
from app.workflows import jobs as catalogue_module


def test_retry_later_is_retried_with_backoff_and_not_logged_as_an_error(monkeypatch, caplog):
    calls: list[int] = []

    def flaky(runtime, execution_id, message_id):  # type: ignore[no-untyped-def]
        calls.append(execution_id)
        if len(calls) == 1:
            raise RetryLater("429 from the generation provider")

    job = catalogue_module.JOBS["daily_generation"]
    patched = PeriodicJob(job.name, job.cron, job.queue, job.description, job.steps,
                          job.catch_up_setting, job.catch_up, per_user=flaky)
    monkeypatch.setattr(catalogue_module, "DECLARED",
                        tuple(patched if j.name == job.name else j for j in catalogue_module.DECLARED))
    broker = actors.setup(Settings())
    set_runtime(object())  # type: ignore[arg-type] - the patched step ignores it
    actor = broker.get_actor(PER_USER_ACTORS["daily_generation"])
    worker = Worker(broker, worker_timeout=100)
    worker.start()
    try:
        with caplog.at_level(logging.DEBUG):
            # min_backoff of the per-user actors is 30 s: retry at once for the test.
            actor.send_with_options(args=(7,), min_backoff=1, max_backoff=10)
            broker.join(actor.queue_name, fail_fast=True)
            worker.join()
    finally:
        worker.stop()
        set_runtime(None)
        dramatiq.set_broker(actors.setup(Settings()))
    assert calls == [7, 7]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert any("Retrying" in r.getMessage() for r in caplog.records)
