"""Each message in its own Sentry scope, tagged with what it is about; reported once, when final.

An attempt that fails and will be retried leaves a breadcrumb (kept, masked and short, in the
message's own ``attempt_errors`` option, so the final attempt's event lists every earlier one);
the attempt after which Dramatiq gives up (retries exhausted, or an exception the actor does not
retry) is captured as one error event. See :mod:`app.error_tracking` for why.

Listed *last* among the broker's middleware, so its "after" hook runs before Retries re-sends
the message (Dramatiq runs "after" hooks in reverse order): the breadcrumb travels with it.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import sentry_sdk
from dramatiq.broker import MessageProxy
from dramatiq.middleware.retries import Retries

from actors.messages import work_of
from app.error_tracking import tag_work
from app.errors import RetryLater
from app.ops.failures import describe

#: The message option carrying earlier attempts' failures, one short line each.
ATTEMPT_ERRORS = "attempt_errors"
#: At most this many earlier failures ride along with a message (the oldest are dropped).
DEFAULT_ATTEMPTS_KEPT = 10
#: Characters kept of each earlier failure's line.
DEFAULT_ATTEMPT_LINE_CHARS = 300


def _max_retries(broker: dramatiq.Broker, message: dramatiq.Message | MessageProxy) -> int | None:
    actor = broker.get_actor(message.actor_name)
    default = next((m.max_retries for m in broker.middleware if isinstance(m, Retries)), None)
    return message.options.get("max_retries", actor.options.get("max_retries", default))


def is_final(broker: dramatiq.Broker, message: dramatiq.Message | MessageProxy, exception: BaseException) -> bool:
    """Whether Retries will give this message up after ``exception`` (its own rule, read early)."""
    actor = broker.get_actor(message.actor_name)
    throws = message.options.get("throws") or actor.options.get("throws")
    if throws and isinstance(exception, throws):
        return True
    limit = _max_retries(broker, message)
    return limit is not None and message.options.get("retries", 0) >= limit


class ErrorTracking(dramatiq.Middleware):
    """A Sentry isolation scope per message; one event per message that fails for good."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not sentry_sdk.get_client().is_active():
            return
        manager = sentry_sdk.isolation_scope()
        scope = manager.__enter__()
        message._autopilot_scope = manager  # type: ignore[attr-defined]
        scope.clear_breadcrumbs()
        attempt = message.options.get("retries", 0) + 1
        tag_work(actor=message.actor_name, queue=message.queue_name, message_id=message.message_id,
                 attempt=attempt, **work_of(message.actor_name, message.args))
        # The message as ids and counts: never its options (Dramatiq's traceback is there).
        scope.set_context("message", {"id": message.message_id, "actor": message.actor_name,
                                      "queue": message.queue_name, "attempt": attempt,
                                      "max_retries": _max_retries(broker, message)})
        for number, line in enumerate(message.options.get(ATTEMPT_ERRORS, []), start=1):
            sentry_sdk.add_breadcrumb(category="retry", level="warning",
                                      message=f"attempt {number} failed: {line}")

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        manager = getattr(message, "_autopilot_scope", None)
        if manager is None:
            return
        try:
            if exception is not None:
                self._report(broker, message, exception)
        finally:
            del message._autopilot_scope  # type: ignore[attr-defined]
            manager.__exit__(None, None, None)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        manager = getattr(message, "_autopilot_scope", None)
        if manager is not None:
            del message._autopilot_scope  # type: ignore[attr-defined]
            manager.__exit__(None, None, None)

    def _report(self, broker: dramatiq.Broker, message: MessageProxy, exception: BaseException) -> None:
        # A Retry raised for a provider's temporary failure: the provider's error is the story.
        cause = exception
        while isinstance(cause, dramatiq.Retry | RetryLater) and cause.__cause__ is not None:
            cause = cause.__cause__
        if is_final(broker, message, exception):
            sentry_sdk.get_isolation_scope().set_tag("final", "retries_exhausted")
            sentry_sdk.capture_exception(cause)
            return
        line = describe(cause)[:DEFAULT_ATTEMPT_LINE_CHARS]
        earlier = [*message.options.get(ATTEMPT_ERRORS, []), line][-DEFAULT_ATTEMPTS_KEPT:]
        message.options[ATTEMPT_ERRORS] = earlier
