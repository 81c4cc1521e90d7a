"""A bare no-op Dramatiq actor on the project's broker and middleware: throughput's baseline.

    dramatiq bench.noop_actors -Q posting --processes 2 --threads 16
"""

from __future__ import annotations

import dramatiq

from app.broker import build_broker
from app.config import get_settings
from app.queues import Queue
from bench.stack import NOOP_ACTOR

broker = build_broker(get_settings())
dramatiq.set_broker(broker)



@dramatiq.actor(broker=broker, queue_name=Queue.POSTING, actor_name=NOOP_ACTOR, max_retries=0)
def noop(*args: object) -> None:
    """Nothing: what the broker, the middleware and the worker cost by themselves."""
