"""What ``dramatiq`` and ``periodiq`` import in a worker or scheduler process.

The broker and its actors, built from the environment (``dramatiq actors.entrypoint -Q
posting``, ``periodiq actors.entrypoint``); both commands read the module's ``broker``. A
worker process also builds its runtime as it boots (:class:`actors.warmup.WarmRuntime`).
"""

from __future__ import annotations

from actors import setup
from actors.warmup import WarmRuntime
from app.config import get_settings

broker = setup(get_settings())
broker.add_middleware(WarmRuntime())
