"""Build a worker process's runtime when the worker boots, not on its first message.

:func:`app.runtime.get_runtime` builds the providers (importing the OpenAI SDK among them) and
the engines on first use, about 0.35 s. Built lazily, that time lands on the first message of
every worker start: the tick or a fan-out's first per-user messages on each process, the first
publish after a restart.
"""

from __future__ import annotations

import logging

import dramatiq

from app.runtime import get_runtime


class WarmRuntime(dramatiq.Middleware):
    """Builds the runtime before the worker's threads start consuming (and before the worker
    registers its heartbeat, so a worker counted as live is ready to run messages at once)."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # httpx logs every request at INFO; our own log and audit say what was published, and
        # in a 2,000-post burst those lines cost worker CPU and the log pipe.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        get_runtime()
