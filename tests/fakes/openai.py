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

``POST /v1/images/generations`` behaves as the SDK's Images API reference says (see
tests/fixtures/wire/openai/images_generations_200.json's source): ``model`` and ``prompt``
required, the prompt at most 32,000 characters, ``n`` 1 to 10, ``size`` a standard size,
``auto`` or ``WIDTHxHEIGHT`` with both sides divisible by 16, an aspect ratio within 3:1 and
at most 3840x2160; the legacy ``response_format`` is refused for GPT image models. It answers
a real PNG of that size as ``data[0].b64_json``. :meth:`FakeOpenAI.script_images` queues other
answers: the safety system's refusal (images_400_moderation_blocked.json), a 500, bytes that
are not an image.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.fakes.http import CLOSE, HANG, FakeHTTPServer, Reply, json_reply
from tests.wire import load as load_wire

DEFAULT_API_KEY = "sk-test-key"
DEFAULT_MODEL = "gpt-test"
DEFAULT_IMAGE_MODEL = "gpt-image-test"

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

#: Scripted answers for :meth:`FakeOpenAI.script_images`.
IMAGE_MODES = ("ok", "refusal", "500", "not_an_image", "no_data", "hang")
#: Sizes every GPT image model takes; others must be WIDTHxHEIGHT within the documented bounds.
STANDARD_IMAGE_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
MAX_IMAGE_PROMPT_CHARS = 32000
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")

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


def offered_images(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``[{"id", "alt_text"}]`` library images a chat request offers (none: [])."""
    for message in request["messages"]:
        if message["role"] == "user" and "{" in message["content"]:
            content = message["content"]
            return json.loads(content[content.index("{") :]).get("images", [])
    return []


def valid_posts(request: dict[str, Any]) -> Posts:
    """A valid post per slot; like a model, the first offered image when images are offered and
    an illustration's description when one is asked for."""
    images = offered_images(request)
    describe = "image_alt_text" in json.dumps(request["messages"])
    posts = []
    for s in requested_slots(request):
        post = {**s, "text": default_text(s["platform"], s["slot"]), "topic": "open models"}
        if images:
            post["image_id"] = images[0]["id"]
        if describe:
            post["image_alt_text"] = "A bright lighthouse of stacked circuit boards beside an open door."
        posts.append(post)
    return posts


class FakeOpenAI:
    """``/v1/chat/completions``, ``/v1/models`` and ``/v1/models/{id}`` of an OpenAI-like API."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, model: str = DEFAULT_MODEL,
                 output_modes: tuple[str, ...] = ("json_schema", "json_object"),
                 ignore_unsupported: bool = False, rejects_temperature: bool = False,
                 latency: float = 0.0, image_model: str = DEFAULT_IMAGE_MODEL) -> None:
        self.api_key = api_key
        self.image_model = image_model
        #: Seconds each chat completion takes before it is answered (a model's generation time);
        #: requests are served concurrently, each on its own thread.
        self.latency = latency
        self.model = model
        self.output_modes = output_modes
        self.ignore_unsupported = ignore_unsupported
        self.rejects_temperature = rejects_temperature
        self._script: deque[str | Custom] = deque()
        self._image_script: deque[str] = deque()
        self.server = FakeHTTPServer(self.handle, hang_seconds=5.0)

    def script(self, *answers: str | Custom) -> None:
        """Queue the next answers: a mode from :data:`MODES`, or a function from request to posts."""
        for answer in answers:
            if isinstance(answer, str) and answer not in MODES:
                raise ValueError(f"unknown mode {answer!r}; expected one of {MODES}")
        self._script.extend(answers)

    def script_images(self, *answers: str) -> None:
        """Queue the next image answers, from :data:`IMAGE_MODES`."""
        for answer in answers:
            if answer not in IMAGE_MODES:
                raise ValueError(f"unknown image mode {answer!r}; expected one of {IMAGE_MODES}")
        self._image_script.extend(answers)

    @property
    def image_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every image generation request, in order."""
        return [r.json() for r in self.server.requests_to("/v1/images/generations")]

    @property
    def models(self) -> list[str]:
        """The models the server offers: the chat model and the image model."""
        return list(dict.fromkeys((self.model, self.image_model)))

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
            return json_reply(200, {"object": "list", "data": [self._model_object(m) for m in self.models]})
        if method == "GET" and path.startswith("/v1/models/"):
            model_id = path.removeprefix("/v1/models/")
            if model_id not in self.models:
                return self._error(
                    404,
                    f"The model '{model_id}' does not exist",
                    "invalid_request_error",
                    "model_not_found",
                )
            return json_reply(200, self._model_object(model_id))
        if (method, path) == ("POST", "/v1/images/generations"):
            return self._images(json.loads(body))
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
        # Strict mode: every property is required; the image fields only when asked for.
        assert set(item["required"]) == set(item["properties"]), item
        assert {"platform", "slot", "text", "topic"} <= set(item["required"]) <= {
            "platform", "slot", "text", "topic", "image_id", "image_alt_text"}, item
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

    def _images(self, request: dict[str, Any]) -> Reply:
        """``POST /v1/images/generations``, validated as documented (see the module docstring)."""
        model, prompt, size = request.get("model"), request.get("prompt"), request.get("size", "auto")
        if not model:
            return self._error(400, "You must provide a model parameter.", "invalid_request_error", None)
        if model != self.image_model:
            return self._error(404, f"The model '{model}' does not exist", "invalid_request_error", "model_not_found")
        if not isinstance(prompt, str) or not prompt.strip():
            return self._error(400, "Missing required parameter: 'prompt'.", "invalid_request_error",
                               "missing_required_parameter")
        if len(prompt) > MAX_IMAGE_PROMPT_CHARS:
            return self._error(400, f"Invalid 'prompt': string too long. Expected a string with maximum length "
                               f"{MAX_IMAGE_PROMPT_CHARS}, but got a string with length {len(prompt)} instead.",
                               "invalid_request_error", "string_above_max_length")
        n = request.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= 10:
            return self._error(400, f"Invalid 'n': {n}; expected 1 to 10.", "invalid_request_error", "invalid_value")
        width_height = self._image_size(size)
        if width_height is None:
            return self._error(400, f"Invalid value: '{size}'. Supported values are: "
                               f"{', '.join(STANDARD_IMAGE_SIZES)} or WIDTHxHEIGHT (multiples of 16).",
                               "invalid_request_error", "invalid_value")
        if "response_format" in request and str(model).startswith("gpt-image"):
            return self._error(400, "Unknown parameter: 'response_format'.", "invalid_request_error",
                               "unknown_parameter")
        answer = self._image_script.popleft() if self._image_script else "ok"
        if answer == "refusal":
            return self._recorded("openai/images_400_moderation_blocked")
        if answer == "500":
            return self._error(500, "The server had an error while processing your request.", "server_error", None)
        if answer == "hang":
            return HANG
        recorded = load_wire("openai/images_generations_200")
        body = json.loads(json.dumps(recorded["body"]))
        if answer == "no_data":
            body["data"] = []
        else:
            data = b"<html>not an image</html>" if answer == "not_an_image" else _png(*width_height)
            body["data"] = [{"b64_json": base64.b64encode(data).decode()} for _ in range(n)]
        body.update(created=int(time.time()), size=size)
        headers = {k: v for k, v in recorded["headers"].items() if k.lower() != "content-type"}
        return json_reply(200, body, headers)

    @staticmethod
    def _image_size(size: Any) -> tuple[int, int] | None:
        """The pixels an accepted ``size`` draws (``auto``: square), or None when refused."""
        if size == "auto":
            return 1024, 1024
        match = _SIZE_RE.match(str(size))
        if not match:
            return None
        width, height = int(match.group(1)), int(match.group(2))
        if size in STANDARD_IMAGE_SIZES:
            return width, height
        if width % 16 or height % 16 or not width or not height:
            return None
        if max(width, height) > 3 * min(width, height) or max(width, height) > 3840 or min(width, height) > 2160:
            return None
        return width, height

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


def _png(width: int, height: int) -> bytes:
    """A real PNG of the requested size, as an image model would return (a flat colour: small)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(out, "PNG")
    return out.getvalue()
