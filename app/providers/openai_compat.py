"""How OpenAI and compatible servers (Ollama, vLLM, llama.cpp) differ, and how failures map.

What each server supports (structured output mode, temperature) is learned once per process
(:data:`CAPABILITIES`); SDK errors become the project's provider errors (:func:`map_openai_error`),
with ``insufficient_quota`` an :class:`OperatorProblem`, not a rate limit.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import openai

from app.clock import utcnow
from app.providers.errors import (
    DEFAULT_OPERATOR_PAUSE,
    AuthError,
    ModelNotServed,
    OperatorProblem,
    PermanentError,
    ProviderError,
    RateLimited,
    TemporaryError,
)

#: How the answer's JSON is requested, most reliable first: a strict schema, a JSON object, or
#: only the prompt's instructions (the answer is validated the same way in every mode).
OUTPUT_MODES = ("json_schema", "json_object", "prompt")



@dataclass
class _Server:
    """What one OpenAI-compatible server was found to support."""

    output_mode: str | None = None  # the first of OUTPUT_MODES that produced a usable answer
    no_temperature: set[str] = field(default_factory=set)  # models refusing a temperature


class Capabilities:
    """In-process memory of each server's abilities, keyed by base URL; thread-safe.

    In process rather than in the database: finding out costs one extra request per worker
    process, and a server upgraded to support ``json_schema`` is used fully after a restart.
    """

    def __init__(self) -> None:
        self._servers: dict[str, _Server] = {}
        self._lock = threading.Lock()

    def output_mode(self, base_url: str) -> str | None:
        with self._lock:
            return self._servers.get(base_url, _Server()).output_mode

    def learned_output_mode(self, base_url: str, mode: str) -> None:
        with self._lock:
            self._servers.setdefault(base_url, _Server()).output_mode = mode

    def accepts_temperature(self, base_url: str, model: str) -> bool:
        with self._lock:
            return model not in self._servers.get(base_url, _Server()).no_temperature

    def refuses_temperature(self, base_url: str, model: str) -> None:
        with self._lock:
            self._servers.setdefault(base_url, _Server()).no_temperature.add(model)

    def forget(self) -> None:
        """Forget every server (tests: a fake's port is reused by the next fake)."""
        with self._lock:
            self._servers.clear()


#: The process-wide memory used by every :class:`OpenAIGeneration`.
CAPABILITIES = Capabilities()


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def _reset_at(headers: Any) -> datetime | None:
    """When a 429 lifts, from Retry-After (seconds) or OpenAI's ``x-ratelimit-reset-*`` ("6m0s")."""
    now = utcnow()
    retry_after = headers.get("retry-after")
    if retry_after and retry_after.strip().replace(".", "", 1).isdigit():
        return now + timedelta(seconds=float(retry_after))
    waits = []
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        value = headers.get(name)
        if value:
            scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
            waits.append(sum(float(n) * scale[u] for n, u in _DURATION_RE.findall(value)))
    return now + timedelta(seconds=max(waits)) if waits else None


def map_openai_error(exc: openai.OpenAIError) -> ProviderError:
    """Classify an SDK exception so the caller knows whether retrying can help."""
    if isinstance(exc, openai.RateLimitError) and "insufficient_quota" in (
        str(getattr(exc, "code", None)), str(getattr(exc, "type", None))
    ):
        return OperatorProblem(
            f"OpenAI quota exhausted: {exc.message} (only billing fixes this: raise the budget "
            "or add credits, then generation resumes)",
            provider="openai", kind="openai_insufficient_quota", pause=DEFAULT_OPERATOR_PAUSE)
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(
            f"OpenAI rate limited: {exc.message}", reset_at=_reset_at(exc.response.headers)
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthError(f"OpenAI refused the credentials ({exc.status_code}): {exc.message}")
    if isinstance(exc, openai.APITimeoutError):
        return TemporaryError(f"OpenAI request timed out: {exc.message}")
    if isinstance(exc, openai.APIConnectionError):
        return TemporaryError(f"OpenAI unreachable: {exc.message}")
    if isinstance(exc, openai.InternalServerError) or (
        isinstance(exc, openai.APIStatusError) and exc.status_code >= 500
    ):
        return TemporaryError(f"OpenAI server error ({exc.status_code}): {exc.message}")
    if isinstance(exc, openai.APIStatusError):
        return PermanentError(f"OpenAI rejected the request ({exc.status_code}): {exc.message}")
    return TemporaryError(f"OpenAI call failed: {exc!r}")


def refuses_temperature(exc: openai.OpenAIError) -> bool:
    """A 400 refusing the temperature (reasoning models accept only the default)."""
    if not isinstance(exc, openai.BadRequestError):
        return False
    return getattr(exc, "param", None) == "temperature" or (
        "temperature" in str(exc.message).lower() and getattr(exc, "code", None) == "unsupported_value")


def refuses_output_mode(exc: openai.OpenAIError, mode: str) -> bool:
    """A 400/422/500 saying the server does not support ``mode`` as a response format.

    Not a 400 about our schema itself ("Invalid schema for response_format"): that is a bug
    to surface, not a server to work around.
    """
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422, 500):
        return False
    message = str(exc.message).lower()
    unsupported = ("not supported", "unsupported", "must be one of", "unknown", "invalid value")
    return mode in message or ("response_format" in message and any(p in message for p in unsupported))



def check_model_served(client: openai.OpenAI, model: str, base_url: str) -> str:
    """Confirm the server at ``base_url`` offers ``model`` (for ``autopilot doctor``): what it said.

    Asks for the model itself, then, on servers that only implement the list, for the list.
    :class:`ModelNotServed` (naming what is served) when it is in neither; an API failure is
    mapped like any other (a wrong key is an :class:`AuthError`).
    """
    try:
        try:
            found = client.models.retrieve(model)
            return f"model {found.id} available at {base_url}"
        except openai.NotFoundError:
            # Some compatible servers only implement the list.
            served = [m.id for m in client.models.list()]
    except openai.OpenAIError as exc:
        raise map_openai_error(exc) from exc
    except ValueError as exc:
        raise TemporaryError(f"OpenAI returned a malformed response body: {exc}") from exc
    if model in served:
        return f"model {model} listed at {base_url}"
    raise ModelNotServed(f"model {model!r} is not served at {base_url}; available: {', '.join(served) or 'none'}")
