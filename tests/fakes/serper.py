"""A fake Serper (google.serper.dev) speaking its JSON format on a real socket.

It checks what the real service requires (POST, ``X-API-KEY``, a JSON body with the known fields)
and answers ``/search`` with ``organic`` results and ``/news`` with ``news`` results. A wrong key
gets Serper's 403. Failures are scripted per call with :meth:`FakeSerper.fail_next`.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from tests.fakes.http import CLOSE, HANG, FakeHTTPServer, Reply, json_reply

#: The key the fake accepts unless told otherwise.
DEFAULT_API_KEY = "test-serper-key"
#: Body fields Serper's search and news endpoints accept (a typo would be silently ignored there).
KNOWN_FIELDS = {"q", "gl", "hl", "tbs", "num", "page", "location", "autocorrect"}

#: Scripted failure modes for :meth:`FakeSerper.fail_next`.
FAILURE_MODES = (
    "429",
    "401",
    "403",
    "400",
    "500",
    "503",
    "malformed",
    "not_object",
    "hang",
    "close",
)

DEFAULT_ORGANIC = [
    {
        "title": "Open-source AI models close the gap",
        "link": "https://www.example.org/ai/open-models/?utm_source=twitter&utm_medium=social",
        "snippet": "Benchmarks show open models within a few points of closed ones.",
        "date": "3 hours ago",
    },
    {
        "title": "A field guide to AI agents in production",
        "link": "https://guides.example.org/agents",
        "snippet": "What teams learned shipping autonomous agents.",
    },
    {
        "title": "Chip makers report record quarter",
        "link": "https://news.example.org/chips",
        "snippet": "Demand for accelerators keeps rising.",
        "date": "Nov 24, 2026",
    },
]
DEFAULT_NEWS = [
    {
        "title": "Open-source AI models close the gap",  # same story as organic, other URL form
        "link": "http://example.org/ai/open-models",
        "snippet": "Benchmarks show open models within a few points.",
        "date": "1 hour ago",
        "source": "Example Times",
        "imageUrl": "https://img.example.org/1.jpg",
    },
    {
        "title": "Regulators publish AI transparency rules",
        "link": "https://policy.example.org/rules",
        "snippet": "New disclosure duties take effect next year.",
        "date": "2 days ago",
        "source": "Policy Wire",
        "imageUrl": "https://img.example.org/2.jpg",
    },
    {
        "title": "Startup funding steadies",
        "link": "https://money.example.org/funding",
        "snippet": "Seed rounds hold up.",
        "date": "sometime last spring",
        "source": "Money Daily",
        "imageUrl": "https://img.example.org/3.jpg",
    },
]


class FakeSerper:
    """Serper's /search and /news endpoints. ``organic``/``news`` are what every query returns."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        organic: list[dict[str, Any]] | None = None,
        news: list[dict[str, Any]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.organic = list(DEFAULT_ORGANIC if organic is None else organic)
        self.news = list(DEFAULT_NEWS if news is None else news)
        self._failures: deque[str] = deque()
        self.server = FakeHTTPServer(self.handle, hang_seconds=5.0)

    def fail_next(self, mode: str, times: int = 1) -> None:
        """Answer the next ``times`` calls with failure ``mode`` (one of :data:`FAILURE_MODES`)."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; expected one of {FAILURE_MODES}")
        self._failures.extend([mode] * times)

    @property
    def url(self) -> str:
        return self.server.url

    def calls(self, endpoint: str) -> int:
        """How many requests reached ``/{endpoint}``."""
        return len(self.server.requests_to(f"/{endpoint}"))

    def __enter__(self) -> FakeSerper:
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.__exit__(*exc_info)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        assert method == "POST", f"Serper endpoints are POST, got {method} {path}"
        assert path in ("/search", "/news"), f"unexpected Serper path {path}"
        if headers.get("x-api-key") != self.api_key:
            return json_reply(403, {"message": "Unauthorized.", "statusCode": 403})
        assert headers.get("content-type", "").startswith("application/json"), headers
        request = json.loads(body)
        assert isinstance(request, dict), request
        assert set(request) <= KNOWN_FIELDS, f"unknown Serper fields {set(request) - KNOWN_FIELDS}"
        assert isinstance(request.get("q"), str) and request["q"].strip(), (
            "q must be a non-empty string"
        )
        assert isinstance(request.get("num", 10), int)
        for name in ("gl", "hl"):
            assert isinstance(request.get(name), str) and request[name] == request[name].lower()
        assert request.get("tbs", "qdr:d").startswith("qdr:"), request.get("tbs")

        if self._failures:
            reply = self._failure(self._failures.popleft())
            if reply is not None:
                return reply
        kind = path.lstrip("/")
        params = {**request, "type": kind, "engine": "google"}
        limit = request.get("num", 10)
        if kind == "search":
            results = [{**r, "position": i + 1} for i, r in enumerate(self.organic[:limit])]
            return json_reply(200, {"searchParameters": params, "organic": results, "credits": 1})
        results = [{**r, "position": i + 1} for i, r in enumerate(self.news[:limit])]
        return json_reply(200, {"searchParameters": params, "news": results, "credits": 1})

    def _failure(self, mode: str) -> Reply | None:
        if mode == "429":
            return json_reply(
                429, {"message": "Too many requests", "statusCode": 429}, {"Retry-After": "30"}
            )
        if mode in ("401", "403"):
            return json_reply(int(mode), {"message": "Unauthorized.", "statusCode": int(mode)})
        if mode == "400":
            return json_reply(400, {"message": "Not enough credits", "statusCode": 400})
        if mode in ("500", "503"):
            return int(mode), {"Content-Type": "text/html"}, "<html>upstream error</html>"
        if mode == "malformed":
            return 200, {"Content-Type": "application/json"}, '{"organic": [{"title": "cut'
        if mode == "not_object":
            return json_reply(200, ["not", "an", "object"])
        if mode == "hang":
            return HANG
        if mode == "close":
            return CLOSE
        return None
