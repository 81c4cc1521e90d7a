"""The named queues workers bind to: a pure vocabulary, like :mod:`app.statuses`.

A queue name is typed by operators (``dramatiq actors.entrypoint -Q posting``, the Procfile,
the compose file) and read by every part that sends or inspects work, so it is spelled once,
here, with no Dramatiq behind it: the CLI, the admin and the ops figures name a queue without
importing the broker. A member is a ``str``, so it goes wherever Dramatiq expects a queue name.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["QUEUES", "Queue"]


class Queue(StrEnum):
    """Each named queue, and the work it carries."""

    #: Daily generation: LLM calls, minutes per user; its own workers so posting never waits.
    AUTONOMOUS = "autonomous"
    #: The weekly report's per-user runs.
    REPORTS = "reports"
    #: The nightly metrics collection's per-user runs.
    METRICS = "metrics"
    #: Publishing and the minute's dispatch and recovery: the queue that must stay short.
    POSTING = "posting"
    #: Manual runs of any job (``autopilot jobs run``, the admin's re-run).
    LEGACY = "legacy"


#: Every named queue, in the order operators see them.
QUEUES: tuple[Queue, ...] = tuple(Queue)
