"""The broker built from settings: kind, middleware, queues, and late periodic messages."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
import pendulum
import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries, SkipMessage, TimeLimit
from periodiq import PeriodiqMiddleware

from app.broker import build_broker
from app.config import Settings
from app.queues import QUEUES


def test_in_process_broker_without_redis_url():
    broker = build_broker(Settings())
    assert isinstance(broker, StubBroker)
    assert set(QUEUES) <= broker.get_declared_queues()
    kinds = {type(m) for m in broker.middleware}
    assert {Retries, TimeLimit, CurrentMessage, PeriodiqMiddleware} <= kinds


def test_redis_broker_with_redis_url(redis_url):
    broker = build_broker(Settings(redis_url=redis_url))
    try:
        assert isinstance(broker, RedisBroker)
        broker.client.ping()
    finally:
        broker.close()


def test_a_periodic_message_that_waited_hours_in_a_busy_queue_is_still_run():
    """Periodiq skips messages older than its skip delay (30 s by default); we never do."""
    broker = build_broker(Settings())
    ran: list[str] = []

    @dramatiq.actor(broker=broker, periodic=None, actor_name="late_tick")
    def late_tick() -> None:
        ran.append("late_tick")

    late_tick.options["periodic"] = "* * * * *"
    two_hours_ago = str(pendulum.now("UTC") - timedelta(hours=2))
    message = late_tick.message_with_options(scheduled_at=two_hours_ago)

    # Periodiq's default middleware would drop this very message...
    with pytest.raises(SkipMessage):
        PeriodiqMiddleware().before_process_message(broker, message)

    # ...while ours runs it through a real worker.
    broker.enqueue(message)
    worker = Worker(broker, worker_timeout=100)
    worker.start()
    try:
        broker.join(message.queue_name)
        worker.join()
    finally:
        worker.stop()
    assert ran == ["late_tick"]


def test_sentry_is_set_up_from_sentry_dsn_without_local_variables():
    import sentry_sdk

    try:
        build_broker(Settings(sentry_dsn="https://key@sentry.invalid/1"))
        client = sentry_sdk.get_client()
        assert client.is_active()
        assert client.options["include_local_variables"] is False
        assert not client.options.get("send_default_pii")
        assert client.options["trace_propagation_targets"] == []
        # Each retried attempt would be an event: both report finals through actors.tracking instead.
        names = {type(i).__name__ for i in client.integrations.values()}
        assert not names & {"DramatiqIntegration", "OpenAIIntegration"}, names
        from dramatiq.middleware import Retries

        import actors
        from actors.tracking import ErrorTracking

        broker = actors.setup(Settings(sentry_dsn="https://key@sentry.invalid/1"))
        kinds = [type(m) for m in broker.middleware]
        assert kinds.index(ErrorTracking) > kinds.index(Retries)  # its "after" hook runs first
    finally:
        sentry_sdk.init()  # no DSN: disabled again for the other tests
        import dramatiq

        import actors

        dramatiq.set_broker(actors.setup(Settings()))
