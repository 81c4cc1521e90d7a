"""What the X and LinkedIn fakes share: a scripted HTTP platform on a real socket.

Each fake (:mod:`tests.fakes.x`, :mod:`tests.fakes.linkedin`) is a
:class:`tests.fakes.http.FakeHTTPServer` on 127.0.0.1 (port 0), speaking the platform's wire
format: the same paths, headers, status codes and JSON bodies, so the real clients in
:mod:`app.providers.x` and :mod:`app.providers.linkedin` are tested unmodified.

Behaviour is scripted per request: :meth:`FakePlatform.respond_next` (any status, body,
headers), :meth:`FakePlatform.hang_next` (process the request, then stall past the client's
read timeout: the post exists but the client cannot know) and :meth:`FakePlatform.drop_next`
(process, then close the connection without answering).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import CLOSE, FakeHTTPServer, Reply

#: Seconds a hung request stalls at most (the fake releases it on exit anyway).
DEFAULT_HANG_SECONDS = 5.0

Response = tuple[int, dict[str, str], bytes]


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    #: When it arrived (``time.time()``): benches measure lateness from it.
    received_at: float = field(default_factory=time.time)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class _Scripted:
    action: str  # "respond", "hang" or "drop"
    method: str | None
    path: str | None
    response: Response | None = None
    seconds: float = DEFAULT_HANG_SECONDS
    process: bool = True

    def matches(self, request: Recorded) -> bool:
        return (self.method is None or self.method == request.method) and (
            self.path is None or request.path.startswith(self.path)
        )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response tuple."""
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


def unused_base_url() -> str:
    """A URL on which nothing listens: connecting is refused, so nothing can have been sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakePlatform:
    """Base of the fakes: server lifecycle, request log and scripted misbehaviour."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: list[_Scripted] = []
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._http: FakeHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> FakePlatform:
        self._http = FakeHTTPServer(self._handle).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        assert self._http is not None
        self._http.__exit__(*exc)

    @property
    def base_url(self) -> str:
        assert self._http is not None, "use the fake as a context manager"
        return self._http.url

    # -- scripting ----------------------------------------------------------------------

    def respond_next(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next matching request with this response instead of processing it.

        ``body`` bytes are sent verbatim (for truncated or invalid JSON); anything else as JSON.
        """
        if isinstance(body, bytes):
            response: Response = (
                status,
                {"Content-Type": "application/json", **(headers or {})},
                body,
            )
        else:
            response = json_response(status, body if body is not None else {}, headers)
        self._script.append(_Scripted("respond", method, path, response=response))

    def hang_next(
        self,
        *,
        method: str | None = "POST",
        path: str | None = None,
        seconds: float = DEFAULT_HANG_SECONDS,
    ) -> None:
        """Process the next matching request (a post is created), then stall before answering."""
        self._script.append(_Scripted("hang", method, path, seconds=seconds))

    def drop_next(
        self, *, method: str | None = "POST", path: str | None = None, process: bool = True
    ) -> None:
        """Read the next matching request, optionally process it, then close without answering."""
        self._script.append(_Scripted("drop", method, path, process=process))

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        """The recorded requests whose path starts with ``path``."""
        return [
            r
            for r in self.requests
            if r.path.startswith(path) and (method is None or r.method == method)
        ]

    # -- dispatch -----------------------------------------------------------------------

    def route(self, request: Recorded) -> Response:
        """Process ``request`` as the platform would (implemented by each fake)."""
        raise NotImplementedError

    def latency(self, request: Recorded) -> float:
        """Seconds the platform takes to answer ``request`` after processing it (benches)."""
        return 0.0

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        """FakeHTTPServer's handler: log, apply the script, else process as the platform."""
        parts = urlsplit(raw_path)
        request = Recorded(method=method, path=parts.path, raw_query=parts.query, headers=headers,
                           body=body)
        with self._lock:
            self.requests.append(request)
            scripted = next((s for s in self._script if s.matches(request)), None)
            if scripted is not None:
                self._script.remove(scripted)
        if scripted is not None and scripted.action == "respond":
            assert scripted.response is not None
            return scripted.response
        if scripted is not None and scripted.action == "drop":
            if scripted.process:
                with self._lock:
                    self.route(request)
            return CLOSE
        with self._lock:
            response = self.route(request)
        delay = self.latency(request)
        if delay:
            time.sleep(delay)  # outside the lock: requests wait side by side, as on a real platform
        if scripted is not None and scripted.action == "hang":
            self._release.wait(scripted.seconds)
        return response
