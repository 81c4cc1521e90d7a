"""Write posts with an OpenAI-compatible chat model (OpenAI, Ollama, vLLM) via the official SDK.

One request writes every slot of a user's day, answering in a strict JSON schema. The model can
still refuse, be cut off by the token limit, or write a tweet X would reject, so every post is
validated here; only the slots that came back unusable are asked for again, a bounded number of
times. A slot that never gets a valid post stays empty rather than receiving a broken one.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import openai

from app.clock import utcnow
from app.providers.base import ContentBrief, DraftPost, PostSlot
from app.providers.errors import (
    AuthError,
    GenerationError,
    PermanentError,
    ProviderError,
    RateLimited,
    TemporaryError,
)
from app.text_limits import LINKEDIN_MAX_CHARS, X_MAX_WEIGHTED, limit_error

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

PLATFORM_LIMITS = {
    "twitter": f"X (twitter): at most {X_MAX_WEIGHTED} weighted characters; a URL counts 23, "
    "CJK characters and emoji count 2. Use 1-3 relevant hashtags.",
    "linkedin": f"LinkedIn: at most {LINKEDIN_MAX_CHARS} characters; a few short paragraphs, "
    "a hook in the first line, no more than 3 hashtags at the end.",
}

SYSTEM_PROMPT = """You are a social media ghostwriter for one person or brand.
Write one post for every requested slot, in the brand voice given, about the user's topics,
grounded in the research provided (never invent facts, figures or quotes; link a source when useful).
Do not repeat or paraphrase the user's recent posts. Reuse what the weekly insights say works.
Respect each platform's length limit strictly. Write the posts only: no preamble, no labels.
Answer with JSON matching the schema: one entry per slot, copying its platform and slot exactly."""


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
    brief: ContentBrief, slots: list[PostSlot], feedback: list[str] | None = None
) -> list[dict[str, str]]:
    """The chat messages for ``slots`` of ``brief``; ``feedback`` explains a previous bad answer."""
    platforms = sorted({s.platform for s in slots})
    request = {
        "language": brief.language,
        "brand_voice": brief.brand_voice,
        "topics": brief.topics,
        "platform_limits": [PLATFORM_LIMITS.get(p, p) for p in platforms],
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
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
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
        payload = json.loads(message.content or "")
    except ValueError:
        return _Outcome({}, ["the answer was not valid JSON"])
    posts = payload.get("posts") if isinstance(payload, dict) else None
    if not isinstance(posts, list):
        return _Outcome({}, ['the answer did not match the schema (no "posts" list)'])

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
        was accepted, and :class:`GenerationError` if no attempt produced a usable post.
        """
        pending: dict[tuple[str, str], PostSlot] = {}
        for slot in brief.slots:
            pending.setdefault((slot.platform, slot_key(slot.slot_at)), slot)
        order = list(pending)
        accepted: dict[tuple[str, str], DraftPost] = {}
        feedback: list[str] = []
        attempts = 0
        while pending and attempts < self.max_attempts:
            attempts += 1
            slots = list(pending.values())
            try:
                completion = self._client.chat.completions.create(  # type: ignore[call-overload]
                    model=self.model,
                    messages=build_messages(brief, slots, feedback),
                    response_format=response_format(slots),
                    temperature=temperature_for(brief.creativity_level),
                )
            except (openai.OpenAIError, ValueError) as exc:
                # The SDK lets a body that is not JSON escape as a bare JSONDecodeError.
                error = (
                    map_openai_error(exc)
                    if isinstance(exc, openai.OpenAIError)
                    else TemporaryError(f"OpenAI returned a malformed response body: {exc}")
                )
                if not accepted:
                    raise error from exc
                logger.warning("generation stopped after a failed retry: %s", error)
                break
            outcome = _parse_answer(completion, pending)
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

    def check(self) -> str:
        """Confirm the key works and the model is served, for ``autopilot doctor``."""
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
