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

__all__ = ["register", "setup"]


def setup(settings: Settings) -> Broker:
    """Build the broker for ``settings``, make it the process's broker, register every actor."""
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    register(broker, settings)
    return broker


def register(broker: Broker, settings: Settings) -> None:
    """Declare every actor on ``broker`` (one that is not the process's, e.g. a test's sender)."""
    jobs = catalogue(settings)
    periodic.register(broker, jobs)
    per_user.register(broker, jobs)
    posting.register(broker)
