"""The one clock: what "now" means everywhere (an aware UTC instant), and a settable one.

Workflows read the runtime's clock (:meth:`app.runtime.Runtime.now`), which is
:func:`utcnow` in production and a :class:`SettableClock` in the demo and the tests; code
without a runtime (column defaults, the CLI, providers) calls :func:`utcnow`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "SettableClock", "utcnow"]

#: A source of the current instant.
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


class SettableClock:
    """A clock that stands still until moved: the demo's fast-forward, and the tests'."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
