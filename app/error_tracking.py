"""Sentry as an operator reads it: one small event per failure that is final, tagged with ids.

What an error tracker is for here is a unit of work that failed for good: a message whose
retries are exhausted (reported by :class:`actors.tracking.ErrorTracking`), a post that could
not be published (:func:`report_publish_failure`, one event per post, grouped by platform and
reason). A retried attempt is not an error yet: it is a breadcrumb on the final event. So:

* the OpenAI integration is disabled (it reports every failed call, retried or not), and so is
  the Dramatiq integration (it reports every failed attempt and copies the message's options,
  Dramatiq's traceback included, into the event, where the size limit then drops the context);
  Dramatiq's worker logger, which logs every failed attempt at ERROR, is not turned into events;
* events carry ids only (actor, queue, message id, job, slot, user id, post id), never a token,
  a post's text or a frame's local variables;
* no ``sentry-trace`` or ``baggage`` header leaves the process (``trace_propagation_targets``
  is empty): every HTTP call we make goes to a third party (X, LinkedIn, OpenAI, Serper).

Every function is a no-op while Sentry is not initialised (no ``SENTRY_DSN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sentry_sdk

from app.config import Settings
from app.errors import InvalidValue

__all__ = ["WORK_TAGS", "init_error_tracking", "report_publish_failure", "tag_work"]

#: The tags every event may carry: ids and names, nothing a user wrote or a secret.
WORK_TAGS = ("actor", "queue", "message_id", "job", "slot", "user_id", "post_id", "execution_id", "platform",
             "reason", "attempt")
#: Breadcrumbs kept per event (Sentry's default is 100; a smaller event is never trimmed).
DEFAULT_MAX_BREADCRUMBS = 50
#: Loggers whose records stay breadcrumbs: Dramatiq logs each failed attempt at ERROR.
QUIET_LOGGERS = ("dramatiq.worker.WorkerThread", "dramatiq.worker._WorkerThread", "dramatiq.middleware.retries.Retries")


def init_error_tracking(settings: Settings) -> bool:
    """Initialise Sentry from ``SENTRY_DSN``; False (and nothing done) when it is unset."""
    if not settings.sentry_dsn:
        return False
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration
    from sentry_sdk.integrations.logging import ignore_logger
    from sentry_sdk.integrations.openai import OpenAIIntegration

    for name in QUIET_LOGGERS:
        ignore_logger(name)
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        disabled_integrations=[OpenAIIntegration(), DramatiqIntegration()],
        # No frame locals: one may hold a decrypted token or a header. Personal data is off by
        # default (no data_collection set): the user is its id, set by tag_work.
        include_local_variables=False,
        max_request_body_size="never",
        max_breadcrumbs=DEFAULT_MAX_BREADCRUMBS,
        # Trace headers go to no host: every outgoing call is to a provider, not to our services.
        trace_propagation_targets=[],
    )
    return True


def tag_work(**ids: Any) -> None:
    """Tag the current scope (the message being processed) with the ids it concerns.

    Only names in :data:`WORK_TAGS`; None values are skipped. ``user_id`` also sets the event's
    user (its id only).
    """
    unknown = set(ids) - set(WORK_TAGS)
    if unknown:
        raise InvalidValue(f"not a work tag: {', '.join(sorted(unknown))} (allowed: {', '.join(WORK_TAGS)})")
    scope = sentry_sdk.get_isolation_scope()
    for name, value in ids.items():
        if value is not None:
            scope.set_tag(name, str(value))
    if ids.get("user_id") is not None:
        scope.set_user({"id": str(ids["user_id"])})


def report_publish_failure(*, post_id: int, user_id: int, platform: str, reason: str, error: str,
                           extra_tags: Mapping[str, Any] | None = None) -> None:
    """One event for a post that could not be published, grouped by platform and reason.

    ``error`` is our own one-line account (an HTTP status and the platform's error code), never
    the post's text or a token.
    """
    if not sentry_sdk.get_client().is_active():
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("post_id", str(post_id))
        scope.set_tag("platform", platform)
        scope.set_tag("reason", reason)
        scope.set_user({"id": str(user_id)})
        for name, value in (extra_tags or {}).items():
            scope.set_tag(name, str(value))
        scope.fingerprint = ["publish-failure", platform, reason]
        scope.set_context("publish", {"post_id": post_id, "platform": platform, "reason": reason,
                                      "error": error[:500]})
        sentry_sdk.capture_message(f"{platform} post not published: {reason}", level="error")
