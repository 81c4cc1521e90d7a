"""How a provider call failed, classified by what the caller may safely do next.

The publish workflow decides retries from the class alone, so every real provider maps its
platform's responses onto exactly one of these.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.errors import AutopilotError

#: How long a provider is paused after an operator problem that names no end (a monthly cap,
#: exhausted credits): one request per pause then checks whether the operator fixed it.
DEFAULT_OPERATOR_PAUSE = timedelta(hours=1)


class ProviderError(AutopilotError):
    """Base class for provider failures."""


class RateLimited(ProviderError):
    """HTTP 429: nothing was created; retry at ``reset_at`` (UTC) or later.

    ``limit`` names the limit that was hit, for messages and audit: ``"window"`` (X's
    15 minutes), ``"app_24h"``/``"user_24h"`` (X's daily caps), ``"day"`` (LinkedIn's
    daily throttles, lifting at midnight UTC) or ``"unknown"``.
    """

    def __init__(self, message: str, reset_at: datetime | None = None, *, limit: str = "unknown") -> None:
        super().__init__(message)
        self.reset_at = reset_at
        self.limit = limit


class TemporaryError(ProviderError):
    """Nothing was created (connection refused, 502/503/504 before processing): retry with backoff."""


class AuthError(ProviderError):
    """401 or expired token: refresh the token once and retry, else the account needs re-authorisation."""


class PermanentError(ProviderError):
    """400, 403 duplicate content, text too long: retrying cannot help; send to review."""


class ModelNotServed(PermanentError):
    """The OpenAI-compatible server does not offer the configured model (a wrong model name,
    or a server that does not serve it): only a configuration change helps."""


class OperatorProblem(PermanentError):
    """Only the operator can fix this: billing, a monthly usage cap, a sunset API version.

    Nothing was created, and every request to the same provider fails the same way until the
    operator acts, so retrying on a timer only makes noise. The caller tells the operator once
    (``kind`` identifies the problem) and, when ``pause`` is set, stops using ``provider`` for
    that long; posts wait for that, or go to review once they would be stale. Without a
    ``pause`` (a sunset API version needs a configuration change) affected work goes to
    review at once. A subclass of PermanentError: a caller unaware of it still never retries.
    """

    def __init__(self, message: str, *, provider: str, kind: str,
                 pause: timedelta | None = DEFAULT_OPERATOR_PAUSE) -> None:
        super().__init__(message)
        self.provider = provider
        self.kind = kind
        self.pause = pause


class OutcomeUnknown(ProviderError):
    """The request may have reached the platform (timeout or connection lost after sending).

    Never retried blindly: reconcile with the platform or hand to review.
    """


class LookupUnsupported(AutopilotError, NotImplementedError):
    """The platform offers this app no way to check whether a post exists
    (:meth:`app.providers.base.Publisher.find_published`): an unknown outcome goes to review.

    Not a ProviderError (nothing failed that a retry or a pause could change); also a
    NotImplementedError, the word the publisher protocol uses, so a caller catching that
    keeps working.
    """


class GenerationError(ProviderError):
    """The model refused, truncated or returned an invalid answer after bounded retries."""
