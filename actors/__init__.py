"""Thin Dramatiq actors: parse the message, call a workflow, send what it asks, nothing else.

Nothing is built at import: :func:`setup` builds the broker from Settings and registers every
actor on it, like Flask's ``create_app``. Worker and scheduler processes import
:mod:`actors.entrypoint`, which calls it from the environment::

    dramatiq actors.entrypoint -Q posting
    periodiq actors.entrypoint
"""

from __future__ import annotations

import importlib
import os
import sys

#: The module ``dramatiq`` and ``periodiq`` load: it builds the broker and registers the actors.
ENTRY_POINT = "actors.entrypoint"


def _named_on_the_command_line() -> str | None:
    """``dramatiq`` or ``periodiq`` when that command was told to load this package itself.

    Both read their broker module from their first positional argument and fall back to a
    default broker when it defines none, so ``dramatiq actors`` would start a worker with no
    actor that consumes nothing, and ``periodiq actors`` would find nothing to schedule.
    """
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    if program == "__main__.py":  # python -m dramatiq
        program = os.path.basename(os.path.dirname(sys.argv[0]))
    if program not in ("dramatiq", "periodiq"):
        return None
    # Each command's own parser, so its options are read exactly as the command reads them.
    command = importlib.import_module("dramatiq.cli" if program == "dramatiq" else "periodiq")
    try:
        args, _ = command.make_argument_parser().parse_known_args(sys.argv[1:])
    except SystemExit:  # not a command line we understand: let the command itself say so
        return None
    return program if getattr(args, "broker", None) == __name__ else None


if (_command := _named_on_the_command_line()) is not None:
    # Not an ImportError: periodiq would log it as its own bug and ask for an issue report.
    raise SystemExit(
        f"`{_command} {__name__}` loads no actor (this package builds nothing at import) and would "
        f"{'consume nothing' if _command == 'dramatiq' else 'schedule nothing'}. Run "
        f"`{_command} {ENTRY_POINT}`{' -Q <queues>' if _command == 'dramatiq' else ''} instead, "
        "as the Procfile does.")

import dramatiq  # noqa: E402 - after the check above, which must run before anything is built
from dramatiq import Broker  # noqa: E402

from actors import per_user, periodic, posting  # noqa: E402
from app.broker import build_broker  # noqa: E402
from app.config import Settings  # noqa: E402
from app.workflows.jobs import catalogue  # noqa: E402

__all__ = ["ENTRY_POINT", "observers", "register", "setup"]


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
    and, when enabled, Prometheus (none of it means anything on the in-process broker), and with
    ``SENTRY_DSN`` the error tracking of every message. Handed to
    :func:`app.broker.build_broker` from here, so the broker does not import the ops figures.
    """
    tracking: list[dramatiq.Middleware] = []
    if settings.sentry_dsn:
        from actors.tracking import ErrorTracking

        # Last: its "after" hook runs before Retries re-sends the message (see actors.tracking).
        tracking.append(ErrorTracking())
    if not settings.redis_url:
        return [], tracking
    from app.ops.failures import FailureNotes
    from app.ops.sampling import QueueSampler
    from app.ops.workers import WorkerRegistry

    # Listed first, FailureNotes runs after Retries has decided whether the message is given up.
    last: list[dramatiq.Middleware] = [WorkerRegistry(), QueueSampler(settings)]
    if settings.dramatiq_prometheus:
        from dramatiq.middleware.prometheus import Prometheus

        # Per-actor counters and durations, served by each worker on dramatiq_prom_port.
        last.append(Prometheus())
    return [FailureNotes()], [*last, *tracking]


def register(broker: Broker, settings: Settings) -> None:
    """Declare every actor on ``broker`` (one that is not the process's, e.g. a test's sender)."""
    jobs = catalogue(settings)
    periodic.register(broker, jobs)
    per_user.register(broker, jobs)
    posting.register(broker)
