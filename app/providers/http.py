"""What the platform clients share: sending a request and classifying how it failed.

Whether a failed create may be retried depends on one question: could the platform have
received it? httpx answers by the exception class, and the status code answers the rest.
X and LinkedIn both use these rules (see app.providers.errors for what each class allows).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, Self

import httpx

from app.clock import utcnow
from app.providers.base import AccountCredentials
from app.providers.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TemporaryError,
)

#: Seconds allowed to open a TCP/TLS connection. Nothing has been sent while connecting, so a
#: timeout here is safely retryable; keep it short.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Seconds allowed to wait for each read of the response. Past this a create is in doubt.
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
#: Statuses meaning the request was refused before processing: nothing was created.
GATEWAY_STATUSES = frozenset({502, 503, 504})
#: Raised by httpx before a single byte of the request went out.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
#: Raised by httpx once the request may have (partly) reached the server.
MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def bearer(platform: str, account: AccountCredentials, now: datetime) -> dict[str, str]:
    """The Authorization header; a token known to be expired is refused without a request."""
    if account.expires_at is not None and account.expires_at <= now:
        hint = "refresh it" if account.refresh_token else "the user must re-authorise"
        raise AuthError(f"{platform} access token expired at {account.expires_at:%Y-%m-%d %H:%M}Z; {hint}")
    return {"Authorization": f"Bearer {account.access_token}"}


def send(client: httpx.Client, platform: str, method: str, url: str, *, creates: bool, thing: str = "post",
         **kwargs: Any) -> httpx.Response:
    """One request; a transport failure becomes TemporaryError, or OutcomeUnknown on a create."""
    try:
        return client.request(method, url, **kwargs)
    except NOT_SENT as exc:
        raise TemporaryError(f"{platform} unreachable ({type(exc).__name__}): {exc}") from exc
    except MAYBE_SENT as exc:
        if creates:
            raise OutcomeUnknown(
                f"{platform} {method} failed after sending ({type(exc).__name__}); the {thing} may exist"
            ) from exc
        raise TemporaryError(f"{platform} {method} failed ({type(exc).__name__})") from exc


def json_object(platform: str, response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON object of a successful read; anything else is a temporary failure."""
    try:
        body = response.json()
    except ValueError:
        raise TemporaryError(f"{platform} {what} returned invalid JSON") from None
    if not isinstance(body, dict):
        raise TemporaryError(f"{platform} {what} returned an unexpected body")
    return body


def raise_for_status(platform: str, response: httpx.Response, detail: str, *, creates: bool,
                     reset_at: datetime | None, thing: str = "post") -> NoReturn:
    """Raise the error class of a non-success status."""
    status = response.status_code
    if status == 429:
        raise RateLimited(f"{platform} rate limit: {detail}", reset_at=reset_at)
    if status == 401:
        raise AuthError(f"{platform} rejected the access token: {detail}")
    if status in GATEWAY_STATUSES:
        raise TemporaryError(f"{platform} unavailable ({status}): {detail}")
    if status >= 500:
        if creates:
            raise OutcomeUnknown(f"{platform} server error {status} on create; the {thing} may exist: {detail}")
        raise TemporaryError(f"{platform} server error {status}: {detail}")
    raise PermanentError(f"{platform} refused the request ({status}): {detail}")


#: Connections kept open per thread between calls (each thread has its own client, below).
KEEPALIVE_PER_THREAD = 2


class PlatformClient:
    """httpx clients with our timeouts and user agent, a clock, and ``close``/``with`` support.

    One httpx client per thread, not one shared by all: a posting worker calls the platform
    from a pool of many threads at once (``PUBLISH_CONCURRENCY``), and httpcore's shared
    connection pool spends CPU quadratic in its connections on every request there (measured:
    over a third of a worker's CPU in a 2,000-post burst) and can close a connection it has
    just handed to a waiting request (encode/httpcore#1110: the call then hangs until its read
    timeout, an unknown outcome). A thread's own client never contends, and keeps its own
    connection alive between calls.
    """

    def __init__(self, *, base_url: str = "", timeout: httpx.Timeout | None = None,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or utcnow
        self._options: dict[str, Any] = {
            "base_url": base_url,
            "timeout": timeout or httpx.Timeout(DEFAULT_READ_TIMEOUT_SECONDS, connect=DEFAULT_CONNECT_TIMEOUT),
            "transport": transport,
            "headers": {"User-Agent": "content-autopilot"},
            "limits": httpx.Limits(max_keepalive_connections=KEEPALIVE_PER_THREAD),
            # Made once: building an SSL context costs milliseconds, too much per thread.
            "verify": httpx.create_ssl_context(),
        }
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """This thread's client, made on its first call."""
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(**self._options)
            with self._clients_lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        """Release every thread's pooled connections."""
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
