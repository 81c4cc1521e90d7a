"""A fake OpenAI-compatible server speaking the Chat Completions wire format on a real socket.

The official ``openai`` SDK is pointed at ``FakeOpenAI.url`` (``http://127.0.0.1:<port>/v1``), so
its headers, JSON and error parsing run for real. The fake checks ``Authorization: Bearer <key>``
(a wrong key gets OpenAI's 401 body), the model, and that the request asks for a strict
``json_schema`` response format. It reads the requested slots from the prompt's JSON, as a model
would, and by default answers a valid post for each. :meth:`FakeOpenAI.script` queues other
answers: refusals, truncation, invalid JSON, over-limit texts, HTTP errors.

Completions use the envelope of a recorded gpt-4o reply (tests/fixtures/wire/openai/
chat_json_schema_200.json, with its content substituted, as its source says). A compatible
server is imitated with ``output_modes`` (the response formats it honours; others are answered
with the recorded llama.cpp 500, or ignored with ``ignore_unsupported``) and a reasoning model
with ``rejects_temperature`` (the recorded 400 ``unsupported_value``).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.fakes.http import CLOSE, HANG, FakeHTTPServer, Reply, json_reply
from tests.wire import load as load_wire

DEFAULT_API_KEY = "sk-test-key"
DEFAULT_MODEL = "gpt-test"

#: Scripted answers for :meth:`FakeOpenAI.script`.
MODES = (
    "ok",  # a valid post for every requested slot
    "refusal",  # message.refusal set, content null
    "truncated",  # half a JSON document, finish_reason "length"
    "invalid_json",  # prose around the JSON
    "over_limit",  # valid JSON, but twitter texts of 299 weighted characters
    "blank",  # valid JSON, whitespace-only texts
    "first_only",  # a post for the first requested slot only
    "wrong_shape",  # JSON without the "posts" list
    "no_choices",  # a completion with an empty choices list
    "garbage_body",  # HTTP 200 whose body is not JSON at all
    "429",  # the recorded 429 rate_limit_exceeded (retry-after 20)
    "insufficient_quota",  # the recorded 429 insufficient_quota
    "401",
    "400",
    "500",
    "hang",
    "close",
)

Posts = list[dict[str, Any]]
Custom = Callable[[dict[str, Any]], Posts]


def requested_slots(request: dict[str, Any]) -> list[dict[str, str]]:
    """The ``[{"platform", "slot"}]`` a chat request asks for, read from its user message's JSON."""
    for message in request["messages"]:
        if message["role"] == "user" and "{" in message["content"]:
            content = message["content"]
            return json.loads(content[content.index("{") :])["slots"]
    raise AssertionError("no user message carrying the request JSON")


def default_text(platform: str, slot: str) -> str:
    """A valid post: short for X, paragraphs for LinkedIn."""
    if platform == "twitter":
        return f"Open models are closing the gap fast. What it means for teams shipping AI ({slot}). #AI"
    return (
        f"Open models are closing the gap ({slot}).\n\n"
        "Benchmarks now put them within a few points of closed systems.\n\n"
        "What would you build if cost were no longer the constraint? #AI #OpenSource"
    )


def valid_posts(request: dict[str, Any]) -> Posts:
    return [
        {**s, "text": default_text(s["platform"], s["slot"]), "topic": "open models"}
        for s in requested_slots(request)
    ]


class FakeOpenAI:
    """``/v1/chat/completions``, ``/v1/models`` and ``/v1/models/{id}`` of an OpenAI-like API."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, model: str = DEFAULT_MODEL,
                 output_modes: tuple[str, ...] = ("json_schema", "json_object"),
                 ignore_unsupported: bool = False, rejects_temperature: bool = False,
                 latency: float = 0.0) -> None:
        self.api_key = api_key
        #: Seconds each chat completion takes before it is answered (a model's generation time);
        #: requests are served concurrently, each on its own thread.
        self.latency = latency
        self.model = model
        self.output_modes = output_modes
        self.ignore_unsupported = ignore_unsupported
        self.rejects_temperature = rejects_temperature
        self._script: deque[str | Custom] = deque()
        self.server = FakeHTTPServer(self.handle, hang_seconds=5.0)

    def script(self, *answers: str | Custom) -> None:
        """Queue the next answers: a mode from :data:`MODES`, or a function from request to posts."""
        for answer in answers:
            if isinstance(answer, str) and answer not in MODES:
                raise ValueError(f"unknown mode {answer!r}; expected one of {MODES}")
        self._script.extend(answers)

    @property
    def url(self) -> str:
        """The SDK's base_url: the server root plus ``/v1``."""
        return self.server.url + "/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every chat completion request, in order."""
        return [r.json() for r in self.server.requests_to("/v1/chat/completions")]

    def __enter__(self) -> FakeOpenAI:
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.__exit__(*exc_info)

    # -- wire format ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        if method == "GET" and path == "/v1/models":
            return json_reply(200, {"object": "list", "data": [self._model_object(self.model)]})
        if method == "GET" and path.startswith("/v1/models/"):
            model_id = path.removeprefix("/v1/models/")
            if model_id != self.model:
                return self._error(
                    404,
                    f"The model '{model_id}' does not exist",
                    "invalid_request_error",
                    "model_not_found",
                )
            return json_reply(200, self._model_object(model_id))
        assert (method, path) == ("POST", "/v1/chat/completions"), f"unexpected {method} {path}"
        request = json.loads(body)
        self._check_request(request)
        if self.latency > 0:
            time.sleep(self.latency)
        temperature = request.get("temperature")
        if self.rejects_temperature and temperature is not None and temperature != 1:
            return self._recorded("openai/chat_400_temperature_unsupported")
        fmt = (request.get("response_format") or {}).get("type")
        honoured = fmt is None or fmt in self.output_modes
        if not honoured and not self.ignore_unsupported:
            return self._recorded("openai/compat_500_json_schema_unsupported")
        if not honoured or (fmt is None and "Answer with one JSON object" not in str(request["messages"])):
            # A model left to itself writes prose, not the JSON the schema would have forced.
            return self._completion("Sure! Here are a few post ideas about open models: ...")
        answer = self._script.popleft() if self._script else "ok"
        return self._answer(answer, request)

    @staticmethod
    def _recorded(name: str) -> Reply:
        data = load_wire(name)
        return json_reply(data["status"], data["body"],
                          {k: v for k, v in data["headers"].items() if k.lower() != "content-type"})

    def _check_request(self, request: dict[str, Any]) -> None:
        assert request.get("model") == self.model, request.get("model")
        messages = request.get("messages")
        assert isinstance(messages, list) and messages, "messages must be a non-empty list"
        assert all(m.get("role") in ("system", "user", "assistant") for m in messages)
        fmt = request.get("response_format")
        assert fmt is None or (isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object")), fmt
        if fmt is None or fmt["type"] != "json_schema":
            return
        spec = fmt["json_schema"]
        assert spec.get("strict") is True and spec.get("name"), spec
        schema = spec["schema"]
        item = schema["properties"]["posts"]["items"]
        assert set(item["required"]) == {"platform", "slot", "text", "topic"}, item
        assert item["additionalProperties"] is False and schema["additionalProperties"] is False
        temperature = request.get("temperature")
        assert temperature is None or 0 <= temperature <= 2, temperature

    def _answer(self, answer: str | Custom, request: dict[str, Any]) -> Reply:
        if callable(answer):
            return self._completion(json.dumps({"posts": answer(request)}))
        if answer == "ok":
            return self._completion(json.dumps({"posts": valid_posts(request)}))
        if answer == "refusal":
            return self._completion(None, refusal="I'm sorry, I can't help with that request.")
        if answer == "truncated":
            full = json.dumps({"posts": valid_posts(request)})
            return self._completion(full[: len(full) // 2], finish_reason="length")
        if answer == "invalid_json":
            return self._completion("Sure! Here are your posts: {posts: [oops]}")
        if answer == "over_limit":
            posts = valid_posts(request)
            for post in posts:
                if post["platform"] == "twitter":
                    post["text"] = ("word " * 60).strip()  # 299 weighted characters
            return self._completion(json.dumps({"posts": posts}))
        if answer == "blank":
            posts = [{**p, "text": "   "} for p in valid_posts(request)]
            return self._completion(json.dumps({"posts": posts}))
        if answer == "first_only":
            return self._completion(json.dumps({"posts": valid_posts(request)[:1]}))
        if answer == "wrong_shape":
            return self._completion(json.dumps({"tweets": ["hello"]}))
        if answer == "no_choices":
            return json_reply(200, {"id": "chatcmpl-x", "object": "chat.completion", "choices": []})
        if answer == "garbage_body":
            return 200, {"Content-Type": "application/json"}, '{"choices": [{"mess'
        if answer == "429":
            return self._recorded("openai/chat_429_rate_limit")
        if answer == "insufficient_quota":
            return self._recorded("openai/chat_429_insufficient_quota")
        if answer == "401":
            return self._error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        if answer == "400":
            return self._error(
                400, "Invalid schema for response_format 'posts'.", "invalid_request_error", None
            )
        if answer == "500":
            return self._error(
                500, "The server had an error while processing your request.", "server_error", None
            )
        if answer == "hang":
            return HANG
        return CLOSE

    def _completion(
        self, content: str | None, *, refusal: str | None = None, finish_reason: str = "stop"
    ) -> Reply:
        recorded = load_wire("openai/chat_json_schema_200")
        body = json.loads(json.dumps(recorded["body"]))
        body.update(id=f"chatcmpl-fake{len(self.server.requests)}", created=int(time.time()),
                    model=self.model)
        choice = body["choices"][0]
        choice["message"].update(content=content, refusal=refusal)
        choice["finish_reason"] = finish_reason
        headers = {k: v for k, v in recorded["headers"].items() if k.lower() != "content-type"}
        return json_reply(200, body, {**headers, "x-request-id": "req_fake"})

    def _model_object(self, model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "fake"}

    @staticmethod
    def _error(
        status: int,
        message: str,
        type_: str,
        code: str | None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
        return json_reply(status, body, headers)
