"""Thin Dramatiq actors: parse the message, call a workflow, send what it asks, nothing else.

Nothing is built at import: :func:`setup` builds the broker from Settings and registers every
actor on it, like Flask's ``create_app``. Worker and scheduler processes import
:mod:`actors.entrypoint`, which calls it from the environment::

    dramatiq actors.entrypoint -Q posting
    periodiq actors.entrypoint
"""

from __future__ import annotations

import dramatiq
from dramatiq import Broker

from actors import per_user, periodic, posting
from app.broker import build_broker
from app.config import Settings
from app.workflows.jobs import catalogue

__all__ = ["observers", "register", "setup"]


def setup(settings: Settings) -> Broker:
    """Build the broker for ``settings``, make it the process's broker, register every actor."""
    first, last = observers(settings)
    broker = build_broker(settings, first=first, last=last)
    dramatiq.set_broker(broker)
    register(broker, settings)
    return broker


def observers(settings: Settings) -> tuple[list[dramatiq.Middleware], list[dramatiq.Middleware]]:
    """What a worker on Redis adds for the operators: (listed first, listed last).

    The worker registry (``autopilot workers``), the minute's queue samples, why a message died
    and, when enabled, Prometheus; none of it means anything on the in-process broker. Handed to
    :func:`app.broker.build_broker` from here, so the broker does not import the ops figures.
    """
    if not settings.redis_url:
        return [], []
    from app.ops.failures import FailureNotes
    from app.ops.sampling import QueueSampler
    from app.ops.workers import WorkerRegistry

    # Listed first, FailureNotes runs after Retries has decided whether the message is given up.
    last: list[dramatiq.Middleware] = [WorkerRegistry(), QueueSampler(settings)]
    if settings.dramatiq_prometheus:
        from dramatiq.middleware.prometheus import Prometheus

        # Per-actor counters and durations, served by each worker on dramatiq_prom_port.
        last.append(Prometheus())
    return [FailureNotes()], last


def register(broker: Broker, settings: Settings) -> None:
    """Declare every actor on ``broker`` (one that is not the process's, e.g. a test's sender)."""
    jobs = catalogue(settings)
    periodic.register(broker, jobs)
    per_user.register(broker, jobs)
    posting.register(broker)
