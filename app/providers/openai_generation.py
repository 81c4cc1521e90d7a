"""Write posts with an OpenAI-compatible chat model (OpenAI, Ollama, vLLM) via the official SDK.

One request writes every slot of a user's day, answering in a strict JSON schema. The model can
still refuse, be cut off by the token limit, or write a tweet X would reject, so every post is
validated here; only the slots that came back unusable are asked for again, a bounded number of
times. A slot that never gets a valid post stays empty rather than receiving a broken one.

Compatible servers differ from OpenAI in two ways handled here, and what works is remembered
per base URL (and model) for the life of the process (:data:`CAPABILITIES`), so the cost of
finding out is paid once per worker, not per user:

* Structured output: llama.cpp-based servers answer 500 to ``json_schema`` or ignore it. The
  request falls back to ``json_object``, then to plain JSON asked for in the prompt; the answer
  is validated the same way in every mode (:data:`OUTPUT_MODES`).
* Temperature: reasoning models accept only the default and answer 400 ``unsupported_value``
  to any other; the request is sent again without it, and the user's creativity reaches the
  model through the prompt only.

A 429 ``insufficient_quota`` is not a rate limit: only billing fixes it, so it is an
:class:`OperatorProblem` (the operator is told once, the day's generation fails with that reason).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import openai

from app.clock import utcnow
from app.platforms import get_platform
from app.providers.base import ContentBrief, DraftPost, PostSlot
from app.providers.errors import (
    DEFAULT_OPERATOR_PAUSE,
    AuthError,
    GenerationError,
    OperatorProblem,
    PermanentError,
    ProviderError,
    RateLimited,
    TemporaryError,
)
from app.text_limits import limit_error

logger = logging.getLogger(__name__)

#: Requests per :meth:`OpenAIGeneration.generate`, the first included, before giving up on a slot.
DEFAULT_MAX_ATTEMPTS = 3
#: Seconds allowed for one chat completion request.
DEFAULT_TIMEOUT = 30.0
#: Sampling temperature at creativity 0.0: focused but not robotic.
MIN_TEMPERATURE = 0.2
#: Sampling temperature at creativity 1.0: adventurous while still following the schema.
MAX_TEMPERATURE = 1.2
#: Research items and recent posts shown to the model; more costs tokens without helping.
MAX_RESEARCH_ITEMS = 8
MAX_RECENT_POSTS = 10

def platform_rules(platform: str) -> str:
    """What the model is told about one platform: its length rule and how to write for it."""
    entry = get_platform(platform)
    return (f"{entry.display_name} ({entry.key}): at most {entry.max_length} {entry.length_unit}; "
            f"{entry.writing_guide}")

SYSTEM_PROMPT = """You are a social media ghostwriter for one person or brand.
Write one post for every requested slot, in the brand voice given, about the user's topics,
grounded in the research provided (never invent facts, figures or quotes; link a source when useful).
Do not repeat or paraphrase the user's recent posts. Reuse what the weekly insights say works.
Respect each platform's length limit strictly. Write the posts only: no preamble, no labels.
Answer with JSON matching the schema: one entry per slot, copying its platform and slot exactly."""


#: How the answer's JSON is requested, most reliable first: a strict schema, a JSON object, or
#: only the prompt's instructions (the answer is validated the same way in every mode).
OUTPUT_MODES = ("json_schema", "json_object", "prompt")

PROMPT_JSON_INSTRUCTIONS = """Answer with one JSON object and nothing else (no prose, no code fence):
{"posts": [{"platform": "<a requested platform>", "slot": "<its slot, copied exactly>",
"text": "<the post>", "topic": "<a few words>"}, ...]}, one entry per requested slot."""


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


def creativity_guidance(creativity_level: float) -> str:
    """The user's creativity in words, for models whose temperature cannot be set."""
    level = min(max(float(creativity_level), 0.0), 1.0)
    if level < 0.34:
        style = "stay close to the research and the brand's usual phrasing"
    elif level < 0.67:
        style = "balance familiar phrasing with a fresh angle"
    else:
        style = "take bold, surprising angles and vivid wording (facts still exact)"
    return f"{level:.1f} on a 0-1 scale: {style}"


def temperature_for(creativity_level: float) -> float:
    """Map the user's creativity (0..1, clamped) linearly onto 0.2..1.2.

    Below 0.2 posts turn repetitive day after day; above 1.2 models start to break the JSON
    schema and the facts, which only costs retries.
    """
    level = min(max(float(creativity_level), 0.0), 1.0)
    return round(MIN_TEMPERATURE + level * (MAX_TEMPERATURE - MIN_TEMPERATURE), 3)


def slot_key(slot_at: datetime) -> str:
    """The ISO UTC instant identifying a slot in the prompt and the answer."""
    aware = slot_at if slot_at.tzinfo else slot_at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def response_format(slots: list[PostSlot]) -> dict[str, Any]:
    """The strict JSON schema of the answer; platform and slot are limited to those requested."""
    item = {
        "type": "object",
        "properties": {
            "platform": {"type": "string", "enum": sorted({s.platform for s in slots})},
            "slot": {"type": "string", "enum": sorted({slot_key(s.slot_at) for s in slots})},
            "text": {"type": "string"},
            "topic": {"type": "string"},
        },
        "required": ["platform", "slot", "text", "topic"],
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"posts": {"type": "array", "items": item}},
        "required": ["posts"],
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {"name": "posts", "strict": True, "schema": schema},
    }


def build_messages(
    brief: ContentBrief, slots: list[PostSlot], feedback: list[str] | None = None,
    *, output_mode: str = "json_schema",
) -> list[dict[str, str]]:
    """The chat messages for ``slots`` of ``brief``; ``feedback`` explains a previous bad answer.

    Without a strict schema (``output_mode`` other than ``json_schema``) the system prompt
    spells out the JSON shape itself.
    """
    platforms = sorted({s.platform for s in slots})
    request = {
        "language": brief.language,
        "brand_voice": brief.brand_voice,
        "creativity": creativity_guidance(brief.creativity_level),
        "topics": brief.topics,
        "platform_limits": [platform_rules(p) for p in platforms],
        "slots": [{"platform": s.platform, "slot": slot_key(s.slot_at)} for s in slots],
        "research": [
            {"title": r.title, "snippet": r.snippet, "link": r.link}
            for r in brief.research[:MAX_RESEARCH_ITEMS]
        ],
        "recent_posts_do_not_repeat": brief.recent_posts[:MAX_RECENT_POSTS],
        "weekly_insights": brief.insights,
    }
    user = f"Write the posts in language '{brief.language}'. The request, as JSON:\n" + json.dumps(
        request, ensure_ascii=False, indent=1
    )
    system = SYSTEM_PROMPT if output_mode == "json_schema" else SYSTEM_PROMPT + "\n" + PROMPT_JSON_INSTRUCTIONS
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    if feedback:
        messages.append(
            {
                "role": "user",
                "content": "Your previous answer could not be used: "
                + "; ".join(feedback)
                + ". Write the requested slots again, fixing this.",
            }
        )
    return messages


@dataclass
class _Outcome:
    accepted: dict[tuple[str, str], DraftPost]
    problems: list[str]
    unparsable: bool = False  # no JSON of the expected shape: the format may have been ignored


_FENCE_RE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _json_payload(content: str) -> Any:
    """The JSON in an answer: the whole text, or inside a code fence or surrounding prose."""
    text = content.strip()
    fenced = _FENCE_RE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            return json.loads(text[start : end + 1])
        raise


def _parse_answer(completion: Any, pending: dict[tuple[str, str], PostSlot]) -> _Outcome:
    """The valid drafts in ``completion`` for the ``pending`` slots, and what was wrong."""
    if not completion.choices:
        return _Outcome({}, ["the answer had no choices"])
    choice = completion.choices[0]
    message = choice.message
    if message is None:
        return _Outcome({}, ["the answer had no message"])
    if getattr(message, "refusal", None):
        return _Outcome({}, [f"the model refused: {message.refusal}"])
    if choice.finish_reason == "length":
        return _Outcome(
            {}, ["the answer was truncated (finish_reason=length); write shorter posts"]
        )
    if choice.finish_reason == "content_filter":
        return _Outcome({}, ["the answer was withheld by the content filter"])
    try:
        payload = _json_payload(message.content or "")
    except ValueError:
        return _Outcome({}, ["the answer was not valid JSON"], unparsable=True)
    posts = payload.get("posts") if isinstance(payload, dict) else None
    if not isinstance(posts, list):
        return _Outcome({}, ['the answer did not match the schema (no "posts" list)'], unparsable=True)

    accepted: dict[tuple[str, str], DraftPost] = {}
    problems: list[str] = []
    for post in posts:
        if not isinstance(post, dict):
            problems.append("a post was not an object")
            continue
        platform, slot, text, topic = (post.get(k) for k in ("platform", "slot", "text", "topic"))
        if not isinstance(platform, str) or not isinstance(slot, str) or not isinstance(text, str):
            problems.append("a post lacked platform, slot or text")
            continue
        key = (platform, _normalise_slot(slot))
        if key not in pending or key in accepted:
            problems.append(f"unrequested or repeated slot {platform} {slot}")
            continue
        text = text.strip()
        error = limit_error(platform, text)
        if error:
            problems.append(f"{platform} {slot}: {error}")
            continue
        accepted[key] = DraftPost(
            platform=platform,
            slot_at=pending[key].slot_at,
            text=text,
            topic=(topic.strip() or None) if isinstance(topic, str) else None,
        )
    missing = [f"{p} {s}" for p, s in pending if (p, s) not in accepted]
    if missing:
        problems.append("no valid post for " + ", ".join(missing))
    return _Outcome(accepted, problems)


def _normalise_slot(value: str) -> str:
    try:
        return slot_key(datetime.fromisoformat(value.strip()))
    except ValueError:
        return value


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


class OpenAIGeneration:
    """:class:`~app.providers.base.GenerationProvider` on the Chat Completions API."""

    name = "openai"
    offline = False

    def __init__(
        self,
        api_key: str,
        base_url: str,
        model: str,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not api_key:
            raise ValueError(
                "OpenAIGeneration needs an API key; set OPENAI_API_KEY (any value for Ollama/vLLM)"
            )
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.model = model
        self.base_url = base_url
        self.max_attempts = max_attempts
        # Retries are ours (validation-aware, bounded); the SDK's would hide 429s from the caller.
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def generate(self, brief: ContentBrief) -> list[DraftPost]:
        """One validated draft per slot; unusable slots are retried, then left out.

        Raises the mapped :class:`ProviderError` if the API call itself fails before any draft
        was accepted, and :class:`GenerationError` if no attempt produced a usable post. A
        server refusing the output format or the temperature is asked again without it: such
        a request does not count as an attempt (there are at most three such changes).
        """
        pending: dict[tuple[str, str], PostSlot] = {}
        for slot in brief.slots:
            pending.setdefault((slot.platform, slot_key(slot.slot_at)), slot)
        order = list(pending)
        accepted: dict[tuple[str, str], DraftPost] = {}
        feedback: list[str] = []
        attempts = 0
        mode = CAPABILITIES.output_mode(self.base_url) or OUTPUT_MODES[0]
        while pending and attempts < self.max_attempts:
            attempts += 1
            slots = list(pending.values())
            try:
                completion, mode = self._complete(brief, slots, feedback, mode)
            except ProviderError as error:
                if not accepted:
                    raise
                logger.warning("generation stopped after a failed retry: %s", error)
                break
            outcome = _parse_answer(completion, pending)
            if outcome.accepted:
                CAPABILITIES.learned_output_mode(self.base_url, mode)
            elif outcome.unparsable and mode != OUTPUT_MODES[-1]:
                # A server that ignores response_format answers prose: ask differently next time.
                mode = OUTPUT_MODES[OUTPUT_MODES.index(mode) + 1]
                logger.info("%s ignored the output format; trying %s", self.base_url, mode)
            accepted.update(outcome.accepted)
            for key in outcome.accepted:
                pending.pop(key)
            feedback = outcome.problems
            if pending:
                logger.info(
                    "attempt %d left %d slot(s) unusable: %s", attempts, len(pending), feedback
                )
        if not accepted:
            raise GenerationError(
                f"no usable post after {attempts} attempt(s): " + "; ".join(feedback)
            )
        return [accepted[key] for key in order if key in accepted]

    def _complete(self, brief: ContentBrief, slots: list[PostSlot], feedback: list[str],
                  mode: str) -> tuple[Any, str]:
        """One chat completion, adapting to the server; returns it and the output mode used.

        A refused output format moves to the next of :data:`OUTPUT_MODES`, a refused
        temperature is dropped for this model; both are remembered in :data:`CAPABILITIES`.
        """
        for _ in range(len(OUTPUT_MODES) + 1):
            temperature = CAPABILITIES.accepts_temperature(self.base_url, self.model)
            kwargs: dict[str, Any] = {
                "model": self.model,
                "messages": build_messages(brief, slots, feedback, output_mode=mode),
            }
            if mode == "json_schema":
                kwargs["response_format"] = response_format(slots)
            elif mode == "json_object":
                kwargs["response_format"] = {"type": "json_object"}
            if temperature:
                kwargs["temperature"] = temperature_for(brief.creativity_level)
            try:
                return self._client.chat.completions.create(**kwargs), mode
            except openai.OpenAIError as exc:
                if temperature and refuses_temperature(exc):
                    logger.info("%s model %s refuses a temperature; omitting it", self.base_url, self.model)
                    CAPABILITIES.refuses_temperature(self.base_url, self.model)
                    continue
                if mode != OUTPUT_MODES[-1] and refuses_output_mode(exc, mode):
                    mode = OUTPUT_MODES[OUTPUT_MODES.index(mode) + 1]
                    logger.info("%s refuses the output format; trying %s", self.base_url, mode)
                    continue
                raise map_openai_error(exc) from exc
            except ValueError as exc:
                # The SDK lets a body that is not JSON escape as a bare JSONDecodeError.
                raise TemporaryError(f"OpenAI returned a malformed response body: {exc}") from exc
        raise PermanentError(f"{self.base_url} refused every output format and temperature setting")

    def probe_output_mode(self) -> str:
        """Which of :data:`OUTPUT_MODES` the server honours, found with a one-line request.

        For ``autopilot doctor``; the answer is remembered like a generation's.
        """
        slot = PostSlot("twitter", datetime.now(UTC).replace(microsecond=0))
        brief = ContentBrief(slots=[slot], brand_voice="plain", creativity_level=0.0,
                             topics=["a connectivity check"], research=[])
        mode = OUTPUT_MODES[0]
        while True:
            completion, mode = self._complete(brief, [slot], ["reply with a one-word post"], mode)
            outcome = _parse_answer(completion, {(slot.platform, slot_key(slot.slot_at)): slot})
            if not outcome.unparsable or mode == OUTPUT_MODES[-1]:
                CAPABILITIES.learned_output_mode(self.base_url, mode)
                return mode
            mode = OUTPUT_MODES[OUTPUT_MODES.index(mode) + 1]

    def check(self) -> str:
        """Confirm the key works, the model is served and which output mode the server
        supports, for ``autopilot doctor``."""
        found = self._check_model()
        mode = self.probe_output_mode()
        temperature = ("" if CAPABILITIES.accepts_temperature(self.base_url, self.model)
                       else "; the model refuses a temperature (creativity goes through the prompt)")
        return f"{found}; output mode {mode}{temperature}"

    def _check_model(self) -> str:
        try:
            try:
                model = self._client.models.retrieve(self.model)
                return f"openai ok: model {model.id} available at {self.base_url}"
            except openai.NotFoundError:
                # Some compatible servers only implement the list.
                served = [m.id for m in self._client.models.list()]
        except openai.OpenAIError as exc:
            raise map_openai_error(exc) from exc
        except ValueError as exc:
            raise TemporaryError(f"OpenAI returned a malformed response body: {exc}") from exc
        if self.model in served:
            return f"openai ok: model {self.model} listed at {self.base_url}"
        raise PermanentError(
            f"model {self.model!r} is not served at {self.base_url}; available: {', '.join(served) or 'none'}"
        )
