"""A tiny threaded HTTP server on a real socket, for faking third-party APIs in tests.

Why a real server rather than a mocked transport: the production clients (httpx, the openai SDK)
must be exercised exactly as they run in production, headers, JSON encoding, timeouts and
connection handling included. A fake speaks the platform's wire format from a plain function:

    def handle(method, path, headers, body):
        return 200, {"Content-Type": "application/json"}, b'{"ok": true}'

    with FakeHTTPServer(handle) as server:
        httpx.get(server.url + "/anything")
        assert server.requests[0].path == "/anything"

The handler may also return :data:`HANG` (never answer, so the client times out) or
:data:`CLOSE` (drop the connection without a response). ``headers`` reach the handler with
lower-cased names (a repeated header keeps its last value). An exception raised by the handler,
an ``AssertionError`` from a fake checking the request for instance, is answered with a 500 and
re-raised when the ``with`` block exits, so a fake's assertion fails the test even when the client
was expected to see an error.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: How long a :data:`HANG` response holds the connection at most, in seconds.
DEFAULT_HANG_SECONDS = 30.0


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Returned by a handler: keep the connection open without answering until the server stops.
HANG = _Sentinel("HANG")
#: Returned by a handler: close the connection without sending any response.
CLOSE = _Sentinel("CLOSE")

Body = bytes | str | dict[str, Any] | list[Any] | None
Reply = tuple[int, Mapping[str, str], Body] | _Sentinel
Handler = Callable[[str, str, dict[str, str], bytes], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON response; ``headers`` are added to the Content-Type."""
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload)


def _encode(body: Body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog like a real server's: the standard
    library's 5 makes a burst of concurrent clients see connection resets no platform sends."""

    request_queue_size = 1024
    daemon_threads = True


class FakeHTTPServer:
    """Serve ``handler`` on 127.0.0.1 at a free port, recording every request.

    Use as a context manager (or call :meth:`start` and :meth:`stop`); ``url`` is the base URL.
    """

    def __init__(self, handler: Handler, *, hang_seconds: float = DEFAULT_HANG_SECONDS) -> None:
        self.handler = handler
        self.hang_seconds = hang_seconds
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake server is not started; use it as a context manager")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash: ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path (query string excluded) is ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def start(self) -> FakeHTTPServer:
        fake = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body are two writes: with Nagle's algorithm the body waits for
            # the client's delayed ACK of the headers (40 ms on Linux), on every keep-alive reply.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep pytest output clean

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = RecordedRequest(self.command, self.path, headers, body)
                with fake._lock:
                    fake.requests.append(request)
                try:
                    reply = fake.handler(self.command, self.path, headers, body)
                except BaseException as exc:  # reported at exit, answered now
                    with fake._lock:
                        fake.errors.append(exc)
                    reply = 500, {"Content-Type": "text/plain"}, f"fake handler failed: {exc!r}"
                if reply is HANG:
                    fake._stopping.wait(fake.hang_seconds)
                    self.close_connection = True
                    return
                if reply is CLOSE:
                    self.close_connection = True
                    return
                assert isinstance(reply, tuple)
                status, reply_headers, reply_body = reply
                data = _encode(reply_body)
                self.send_response(status)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting (a delayed answer simulating a timeout)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        server = _Server(("127.0.0.1", 0), _RequestHandler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop()
        if exc is None and self.errors:
            # The client was answered with a 500 and may have expected an error anyway: the
            # fake's own failure (a request check, a bug) must still fail the test.
            raise self.errors[0]
        if exc_type is None and self.errors:
            raise self.errors[0]
