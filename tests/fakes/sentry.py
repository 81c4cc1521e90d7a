"""A local Sentry ingest: the envelope endpoint sentry-sdk's own HTTP transport posts to.

Built from Sentry's developer documentation (develop.sentry.dev: "Envelopes" for the format,
"Store/Envelope endpoint" and "Authentication" for the request): ``POST
/api/<project id>/envelope/``, authenticated by ``X-Sentry-Auth: Sentry sentry_key=<public key>,
...`` (a wrong key gets 401, as the real ingest answers), the body optionally ``gzip`` or ``br``
encoded. An envelope is newline-separated: a JSON header, then for each item a JSON item header
(``type``, optional ``length`` in bytes) and its payload. Events (``type: event``) are decoded;
other items (sessions, client reports) are kept raw.

    with FakeSentry() as sentry:
        sentry_sdk.init(dsn=sentry.dsn)
        ...
        sentry_sdk.flush()
        assert len(sentry.events) == 1
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from dataclasses import dataclass
from typing import Any

from tests.fakes.http import FakeHTTPServer, Reply, json_reply

#: The project id and public key of the fake's DSN.
PROJECT_ID, PUBLIC_KEY = "42", "fake-public-key"
_ENVELOPE_PATH = re.compile(r"^/api/(?P<project>\d+)/envelope/$")


@dataclass(frozen=True)
class Envelope:
    """One envelope as received: its header, its items, and its size on the wire (decoded)."""

    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]]
    size_bytes: int

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for item, payload in self.items if item.get("type") == "event"]


def parse_envelope(data: bytes) -> Envelope:
    """Split an envelope into its header and items (the format of develop.sentry.dev/sdk/envelopes)."""
    header_line, _, rest = data.partition(b"\n")
    header = json.loads(header_line)
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item = json.loads(item_line)
        if "length" in item:
            payload, rest = rest[:item["length"]], rest[item["length"]:]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item, payload))
    return Envelope(header, items, len(data))


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]  # sentry-sdk sends br only when brotli is installed

        return bytes(brotli.decompress(body))
    if encoding:
        raise AssertionError(f"unexpected Content-Encoding {encoding!r}")
    return body


class FakeSentry:
    """The envelope endpoint on a real socket; ``dsn`` points sentry-sdk's transport at it."""

    def __init__(self) -> None:
        self.server = FakeHTTPServer(self.handle)
        self.envelopes: list[Envelope] = []
        self._lock = threading.Lock()

    @property
    def dsn(self) -> str:
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self.server.port}/{PROJECT_ID}"

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [event for envelope in self.envelopes for event in envelope.events()]

    def raw(self) -> bytes:
        """Every envelope received, decoded, concatenated (to look for what must never be sent)."""
        return b"\n".join(r.body if not r.headers.get("content-encoding")
                          else _decode(r.body, r.headers["content-encoding"]) for r in self.server.requests)

    def __enter__(self) -> FakeSentry:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        match = _ENVELOPE_PATH.match(path.split("?", 1)[0])
        if method != "POST" or match is None:
            return json_reply(404, {"detail": "not found"})
        if match["project"] != PROJECT_ID:
            return json_reply(403, {"detail": "project does not exist"})
        auth = headers.get("x-sentry-auth", "")
        if f"sentry_key={PUBLIC_KEY}" not in auth:
            return json_reply(401, {"detail": "missing or invalid authorization"})
        envelope = parse_envelope(_decode(body, headers.get("content-encoding", "")))
        with self._lock:
            self.envelopes.append(envelope)
        event_ids = [event.get("event_id") for event in envelope.events()]
        return json_reply(200, {"id": event_ids[0] if event_ids else envelope.header.get("event_id")})
