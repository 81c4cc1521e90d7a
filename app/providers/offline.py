"""Offline research and generation: the whole pipeline runs with no API key and no network.

Both are deterministic (same inputs, same output), so demos and tests are reproducible, and both
produce the same types as the real providers, so workflows cannot tell them apart except by
``offline = True``, which is what the admin shows to flag simulated content.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from app.platforms import get_platform
from app.providers.base import ContentBrief, DraftPost, PostSlot, ResearchItem
from app.text_limits import truncate_to_limit

#: Research items returned per search.
DEFAULT_RESULTS = 6
#: Oldest simulated publication time of an offline result, in hours before ``now``.
DEFAULT_MAX_AGE_HOURS = 36


@lru_cache(maxsize=1)
def load_corpus() -> tuple[dict[str, Any], ...]:
    """The bundled headlines (``app/data/corpus.json``): title, snippet, link, keywords."""
    text = resources.files("app").joinpath("data/corpus.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["items"])


def _seed(*parts: object) -> int:
    # Not hash(): str hashing is salted per process, and output must be stable across runs.
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "topic"


class OfflineResearch:
    """Simulated research: one result about the topic itself plus the closest bundled headlines.

    Results depend only on (topic, UTC day of ``now``), so every run of a day agrees.
    """

    name = "offline-research"
    offline = True

    def __init__(self, *, results: int = DEFAULT_RESULTS) -> None:
        self.results = results

    def search(
        self, topic: str, *, language: str, country: str, now: datetime
    ) -> list[ResearchItem]:
        """Deterministic results for ``topic`` on ``now``'s UTC day, newest first."""
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        day = now.astimezone(UTC).date().isoformat()
        topic_clean = " ".join(topic.split()) or "technology"
        rng = random.Random(_seed(topic_clean.lower(), day))
        wanted = _words(topic_clean)

        def score(item: dict[str, Any]) -> tuple[int, float]:
            keywords = _words(" ".join(item["keywords"]) + " " + item["title"])
            return len(wanted & keywords), rng.random()

        ranked = sorted(load_corpus(), key=score, reverse=True)
        chosen = ranked[: max(self.results - 1, 0)]
        items = [
            ResearchItem(
                title=f"What's changing in {topic_clean} this week",
                link=f"https://example.org/briefing/{_slug(topic_clean)}/{day}",
                snippet=f"A roundup of recent developments in {topic_clean} and what they mean for practitioners.",
                published_at=now - timedelta(hours=1),
                source="example.org",
            )
        ]
        for item in chosen:
            age = timedelta(minutes=rng.randint(90, DEFAULT_MAX_AGE_HOURS * 60))
            items.append(
                ResearchItem(
                    title=item["title"],
                    link=item["link"],
                    snippet=item["snippet"],
                    published_at=now - age,
                    source="example.org",
                )
            )
        return sorted(items, key=lambda i: i.published_at or now, reverse=True)[: self.results]


#: Vocabulary per brand voice: openers, takes and closing questions.
VOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "professional": {
        "openers": ("Worth noting:", "A development to watch:", "Key takeaway today:", "In focus:"),
        "takes": (
            "The organisations that adapt early will set the standard.",
            "The implications for strategy are significant.",
            "This is where preparation pays off.",
        ),
        "questions": ("How is your team approaching this?", "What would you prioritise first?"),
    },
    "casual": {
        "openers": (
            "So, this caught my eye:",
            "Quick one:",
            "Been reading about this:",
            "Okay, hear me out:",
        ),
        "takes": (
            "Honestly, it makes a lot of sense.",
            "Pretty interesting where this is going.",
            "Curious to see how it plays out.",
        ),
        "questions": ("What do you think?", "Anyone else trying this?"),
    },
    "playful": {
        "openers": ("Plot twist:", "Fun fact of the day:", "Guess what?", "Today's rabbit hole:"),
        "takes": (
            "The future is showing up early, again.",
            "Cue the nerdy excitement.",
            "Who had this on their bingo card?",
        ),
        "questions": ("Team yes or team wait-and-see?", "What's your hot take?"),
    },
    "bold": {
        "openers": ("Let's be clear:", "Hard truth:", "Unpopular opinion:", "Here's the reality:"),
        "takes": (
            "Waiting is the riskiest move you can make.",
            "The laggards will not get a second chance.",
            "This changes the game. Act accordingly.",
        ),
        "questions": ("Are you leading or catching up?", "What's stopping you?"),
    },
    "neutral": {
        "openers": ("Today:", "In the news:", "Something to read:", "An update:"),
        "takes": (
            "It is a useful signal of where things are heading.",
            "Worth keeping an eye on.",
            "A good moment to take stock.",
        ),
        "questions": ("What is your view?", "How does this affect your work?"),
    },
}


def voice_for(brand_voice: str) -> str:
    """The vocabulary matching the user's free-text brand voice; ``neutral`` when none does."""
    words = _words(brand_voice)
    for voice in ("professional", "casual", "playful", "bold"):
        if voice in words:
            return voice
    return "neutral"


def hashtag(topic: str) -> str:
    """``"open-source AI"`` -> ``"#OpenSourceAI"``."""
    parts = re.findall(r"[A-Za-z0-9]+", topic)
    return "#" + "".join(p if p.isupper() else p.capitalize() for p in parts) if parts else ""


class TemplateGeneration:
    """Simulated generation: deterministic template posts, no model involved.

    Posts honour the brand voice's vocabulary, name the topic and a research headline, vary by
    slot, avoid the user's recent posts and always fit the platform's limit. They are written in
    English whatever the requested language. Nothing in the text says it is simulated (it would be
    published as is in a demo); the ``offline`` flag carries that.
    """

    name = "offline-templates"
    offline = True

    def generate(self, brief: ContentBrief) -> list[DraftPost]:
        """One draft per distinct (platform, slot) of ``brief``, in brief order."""
        vocab = VOICES[voice_for(brief.brand_voice)]
        avoid = {self._normalise(p) for p in brief.recent_posts}
        drafts: list[DraftPost] = []
        seen_slots: set[tuple[str, datetime]] = set()
        for index, slot in enumerate(brief.slots):
            if (slot.platform, slot.slot_at) in seen_slots:
                continue
            seen_slots.add((slot.platform, slot.slot_at))
            topic = brief.topics[index % len(brief.topics)] if brief.topics else "technology"
            text = self._first_new(brief, slot, topic, vocab, index, avoid)
            avoid.add(self._normalise(text))
            drafts.append(DraftPost(slot.platform, slot.slot_at, text, topic))
        return drafts

    @staticmethod
    def _normalise(text: str) -> str:
        return " ".join(text.lower().split())

    def _first_new(
        self,
        brief: ContentBrief,
        slot: PostSlot,
        topic: str,
        vocab: dict[str, tuple[str, ...]],
        index: int,
        avoid: set[str],
    ) -> str:
        base = _seed(slot.platform, slot.slot_at.isoformat(), topic, index)
        variants = len(vocab["openers"]) * len(vocab["takes"]) * max(len(brief.research), 1)
        text = ""
        for attempt in range(variants):
            text = self._render(brief, slot.platform, topic, vocab, base + attempt)
            if self._normalise(text) not in avoid:
                return text
        return text  # every variant was used recently: unlikely, and still a valid post

    def _render(
        self,
        brief: ContentBrief,
        platform: str,
        topic: str,
        vocab: dict[str, tuple[str, ...]],
        n: int,
    ) -> str:
        opener = vocab["openers"][n % len(vocab["openers"])]
        take = vocab["takes"][(n // len(vocab["openers"])) % len(vocab["takes"])]
        question = vocab["questions"][n % len(vocab["questions"])]
        item = self._research_for(brief.research, topic, n)
        headline = item.title if item else f"new thinking on {topic}"
        tags = " ".join(dict.fromkeys(t for t in (hashtag(topic), hashtag(broad_tag(topic))) if t))
        if get_platform(platform).short_form:
            link = f" {item.link}" if item else ""
            return truncate_to_limit(platform, f"{opener} {headline}.{link} {take} {tags}".strip())
        paragraphs = [
            f"{opener} {headline}.",
            (item.snippet if item and item.snippet else f"There is a lot happening in {topic}.")
            + f" For anyone working in {topic}, {take[0].lower()}{take[1:]}",
            question,
            (f"Source: {item.link}\n\n" if item else "") + tags,
        ]
        return truncate_to_limit(platform, "\n\n".join(paragraphs))

    @staticmethod
    def _research_for(research: list[ResearchItem], topic: str, n: int) -> ResearchItem | None:
        if not research:
            return None
        wanted = _words(topic)
        related = [r for r in research if wanted & _words(r.title + " " + r.snippet)] or research
        return related[n % len(related)]


def broad_tag(topic: str) -> str:
    """A second, broader hashtag: the topic's last word (``"developer tools"`` -> ``Tools``)."""
    words = re.findall(r"[A-Za-z0-9]+", topic)
    return words[-1] if len(words) > 1 else ""
