"""What an OpenAI-compatible model is asked and how its answer is read: the prompt, the JSON
schema, the temperature for a creativity level, and the parsing and checking of each post.

Pure functions: :mod:`app.providers.openai_generation` sends them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.platforms import get_platform
from app.providers.base import ContentBrief, DraftPost, ImageCandidate, PostSlot
from app.text_limits import limit_error

#: Sampling temperature at creativity 0.0: focused but not robotic.
MIN_TEMPERATURE = 0.2
#: Sampling temperature at creativity 1.0: adventurous while still following the schema.
MAX_TEMPERATURE = 1.2
#: Research items and recent posts shown to the model; more costs tokens without helping.
MAX_RESEARCH_ITEMS = 8
MAX_RECENT_POSTS = 10
#: Library images offered to the model; their alt texts cost tokens like research does.
MAX_IMAGE_CANDIDATES = 10
#: The longest image description kept from an answer (the library's alt text limit).
MAX_IMAGE_DESCRIPTION = 1000

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

#: Added when the user's library offers images (by id and alt text; the model never sees pixels).
IMAGES_PROMPT = """The request lists images from the user's library by id and alt text. For each post set
"image_id" to the id of the one image that fits it, or null when none does; never invent an id."""

#: Added when an image model will illustrate the posts that get no library image.
DESCRIBE_PROMPT = """For each post set "image_alt_text" to one or two plain sentences describing an illustration
for it (what is seen, no text in the picture): it becomes the image's prompt and its alt text."""

PROMPT_JSON_INSTRUCTIONS = """Answer with one JSON object and nothing else (no prose, no code fence):
{"posts": [{"platform": "<a requested platform>", "slot": "<its slot, copied exactly>",
"text": "<the post>", "topic": "<a few words>"}, ...]}, one entry per requested slot."""
PROMPT_JSON_IMAGE_FIELDS = """Each entry also has "image_id" (an offered image's id, or null)."""
PROMPT_JSON_DESCRIBE_FIELDS = """Each entry also has "image_alt_text" (the illustration's description)."""





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


def offered_images(brief: ContentBrief) -> list[ImageCandidate]:
    """The library images shown to the model (the first :data:`MAX_IMAGE_CANDIDATES`)."""
    return brief.images[:MAX_IMAGE_CANDIDATES]


def response_format(slots: list[PostSlot], brief: ContentBrief | None = None) -> dict[str, Any]:
    """The strict JSON schema of the answer; platform and slot are limited to those requested,
    an image id to the offered ones (or null)."""
    properties: dict[str, Any] = {
        "platform": {"type": "string", "enum": sorted({s.platform for s in slots})},
        "slot": {"type": "string", "enum": sorted({slot_key(s.slot_at) for s in slots})},
        "text": {"type": "string"},
        "topic": {"type": "string"},
    }
    images = offered_images(brief) if brief is not None else []
    if images:
        properties["image_id"] = {"type": ["integer", "null"], "enum": [*(i.media_id for i in images), None]}
    if brief is not None and brief.describe_images:
        properties["image_alt_text"] = {"type": "string"}
    item = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
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
    images = offered_images(brief)
    if images:
        # Ids and alt texts only: never a URL or the pixels.
        request["images"] = [{"id": i.media_id, "alt_text": i.alt_text} for i in images]
    user = f"Write the posts in language '{brief.language}'. The request, as JSON:\n" + json.dumps(
        request, ensure_ascii=False, indent=1
    )
    parts = [SYSTEM_PROMPT]
    if images:
        parts.append(IMAGES_PROMPT)
    if brief.describe_images:
        parts.append(DESCRIBE_PROMPT)
    if output_mode != "json_schema":
        parts.append(PROMPT_JSON_INSTRUCTIONS)
        if images:
            parts.append(PROMPT_JSON_IMAGE_FIELDS)
        if brief.describe_images:
            parts.append(PROMPT_JSON_DESCRIBE_FIELDS)
    system = "\n".join(parts)
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


def parse_answer(completion: Any, pending: dict[tuple[str, str], PostSlot]) -> _Outcome:
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
        image_id = post.get("image_id")
        description = post.get("image_alt_text")
        description = " ".join(description.split())[:MAX_IMAGE_DESCRIPTION] if isinstance(description, str) else ""
        accepted[key] = DraftPost(
            platform=platform,
            slot_at=pending[key].slot_at,
            text=text,
            topic=(topic.strip() or None) if isinstance(topic, str) else None,
            # Any integer is passed on: the workflow checks it against the offered candidates.
            media_id=image_id if isinstance(image_id, int) and not isinstance(image_id, bool) else None,
            image_chosen="image_id" in post,
            image_description=description or None,
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


