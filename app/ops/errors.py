"""The operations package's errors, under the application's root."""

from __future__ import annotations

from app.errors import AutopilotError


class OpsError(AutopilotError):
    """Base class of every error the operations tools raise on purpose."""


class UnknownQueue(OpsError):
    """A queue name that is not one of the named queues."""

    def __init__(self, queue: str, known: tuple[str, ...]) -> None:
        self.queue = queue
        super().__init__(f"queue {queue!r} is not a named queue; known: {', '.join(known)}")


class BrokerUnavailable(OpsError):
    """REDIS_URL is unset (the in-process broker has no state an operator can read)."""
