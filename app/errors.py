"""One exception hierarchy for the whole project: every error raised on purpose is an AutopilotError.

Providers classify their failures under :class:`app.providers.errors.ProviderError`, itself an
AutopilotError, so a caller can catch the project's errors in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class AutopilotError(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidValue(AutopilotError, ValueError):
    """A value outside what a function accepts: a naive instant, an unknown name, a bad size.

    Also a ``ValueError``, so a caller that guards a conversion with ``except ValueError``
    keeps working; raised for bad arguments, where :class:`ValidationError` reports user input.
    """


class ConfigError(AutopilotError):
    """An environment variable holds a value the process cannot run with."""

    def __init__(self, variable: str, value: str, reason: str) -> None:
        self.variable = variable
        self.value = value
        self.reason = reason
        super().__init__(f"{variable}={value!r}: {reason}")


@dataclass(frozen=True)
class FieldError:
    """One invalid field of user input: which field, what value, and why."""

    field: str
    value: object
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason} (got {self.value!r})"


class ValidationError(AutopilotError):
    """User input was refused; ``errors`` lists every bad field, none is stored."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


class NotFound(AutopilotError):
    """A user, post or account named by the caller does not exist."""


class TokenDecryptionError(AutopilotError):
    """A stored token cannot be decrypted with any configured key."""


class RetryLater(AutopilotError):
    """An intentional retry, not a failure: a per-user run hit a temporary provider failure.

    The actor turns it into ``dramatiq.Retry``, which Dramatiq retries with backoff without
    logging it as an error (workflows never import Dramatiq).
    """
