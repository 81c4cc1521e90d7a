"""How a provider call failed, classified by what the caller may safely do next.

The publish workflow decides retries from the class alone, so every real provider maps its
platform's responses onto exactly one of these.
"""

from __future__ import annotations

from datetime import datetime

from app.errors import AutopilotError


class ProviderError(AutopilotError):
    """Base class for provider failures."""


class RateLimited(ProviderError):
    """HTTP 429: nothing was created; retry at ``reset_at`` (UTC) or later."""

    def __init__(self, message: str, reset_at: datetime | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class TemporaryError(ProviderError):
    """Nothing was created (connection refused, 502/503/504 before processing): retry with backoff."""


class AuthError(ProviderError):
    """401 or expired token: refresh the token once and retry, else the account needs re-authorisation."""


class PermanentError(ProviderError):
    """400, 403 duplicate content, text too long: retrying cannot help; send to review."""


class OutcomeUnknown(ProviderError):
    """The request may have reached the platform (timeout or connection lost after sending).

    Never retried blindly: reconcile with the platform or hand to review.
    """


class GenerationError(ProviderError):
    """The model refused, truncated or returned an invalid answer after bounded retries."""
