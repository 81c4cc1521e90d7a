"""Offline research and template generation: deterministic, on-voice, on-topic, within limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.providers.base import ContentBrief, PostSlot
from app.providers.offline import (
    VOICES,
    OfflineResearch,
    TemplateGeneration,
    hashtag,
    load_corpus,
    voice_for,
)
from app.text_limits import fits_platform
from app.x_weighted import x_weighted_length

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SLOTS = [
    PostSlot("twitter", NOW + timedelta(hours=3)),
    PostSlot("linkedin", NOW + timedelta(hours=4)),
    PostSlot("twitter", NOW + timedelta(hours=11)),
]


def make_brief(**overrides: Any) -> ContentBrief:
    values: dict[str, Any] = {
        "slots": SLOTS,
        "brand_voice": "professional",
        "creativity_level": 0.7,
        "topics": ["AI coding tools"],
        "research": OfflineResearch().search(
            "AI coding tools", language="en", country="us", now=NOW
        ),
    }
    values.update(overrides)
    return ContentBrief(**values)


def test_the_bundled_corpus_is_neutral_example_content() -> None:
    corpus = load_corpus()
    assert 25 <= len(corpus) <= 40
    for item in corpus:
        assert item["title"] and item["snippet"] and item["keywords"]
        assert item["link"].startswith("https://example.org/")


def test_offline_research_is_deterministic_per_topic_and_day() -> None:
    research = OfflineResearch()
    first = research.search("cybersecurity", language="en", country="us", now=NOW)
    assert first == research.search("cybersecurity", language="en", country="us", now=NOW)
    assert first != research.search(
        "cybersecurity", language="en", country="us", now=NOW + timedelta(days=1)
    )
    assert research.offline is True and research.name == "offline-research"


def test_offline_research_leads_with_the_topic_and_related_headlines_newest_first() -> None:
    items = OfflineResearch().search("cybersecurity", language="en", country="us", now=NOW)
    assert len(items) == 6
    assert "cybersecurity" in items[0].title
    assert any("Ransomware" in i.title or "alert triage" in i.title for i in items)
    dates = [i.published_at for i in items]
    assert all(d is not None and d.tzinfo is not None and d <= NOW for d in dates)
    assert dates == sorted(dates, reverse=True)  # type: ignore[type-var]


def test_template_posts_fill_every_slot_within_limits_and_vary_by_slot() -> None:
    drafts = TemplateGeneration().generate(make_brief())
    assert [(d.platform, d.slot_at) for d in drafts] == [(s.platform, s.slot_at) for s in SLOTS]
    assert all(fits_platform(d.platform, d.text) for d in drafts)
    assert len({d.text for d in drafts}) == 3
    x_post, li_post = drafts[0], drafts[1]
    assert "#AICodingTools" in x_post.text
    assert li_post.text.count("\n\n") >= 2 and len(li_post.text) > len(x_post.text)
    assert all(d.topic == "AI coding tools" for d in drafts)


def test_template_posts_are_deterministic() -> None:
    assert TemplateGeneration().generate(make_brief()) == TemplateGeneration().generate(
        make_brief()
    )


def test_template_posts_mention_a_research_headline() -> None:
    brief = make_brief()
    titles = [r.title for r in brief.research]
    for draft in TemplateGeneration().generate(brief):
        assert any(title in draft.text for title in titles)


@pytest.mark.parametrize(
    ("brand_voice", "voice"),
    [
        ("Professional and clear", "professional"),
        ("casual, friendly", "casual"),
        ("PLAYFUL", "playful"),
        ("bold", "bold"),
        ("mysterious poet", "neutral"),
        ("", "neutral"),
    ],
)
def test_brand_voice_selects_a_vocabulary(brand_voice: str, voice: str) -> None:
    assert voice_for(brand_voice) == voice
    drafts = TemplateGeneration().generate(make_brief(brand_voice=brand_voice))
    openers = VOICES[voice]["openers"]
    assert all(d.text.startswith(openers) for d in drafts)


def test_recent_posts_are_not_repeated() -> None:
    generator = TemplateGeneration()
    first = generator.generate(make_brief())
    again = generator.generate(make_brief(recent_posts=[d.text for d in first]))
    assert not {d.text for d in first} & {d.text for d in again}


def test_long_research_is_truncated_to_fit() -> None:
    brief = make_brief()
    long_item = brief.research[0].__class__(
        title="Breaking " + "very " * 80 + "long headline",
        link="https://example.org/long",
        snippet="detail " * 700,
        published_at=NOW,
        source="example.org",
    )
    brief = make_brief(research=[long_item], topics=["AI"])
    for draft in TemplateGeneration().generate(brief):
        assert fits_platform(draft.platform, draft.text)
        assert draft.text.endswith("\u2026")
    assert x_weighted_length(TemplateGeneration().generate(brief)[0].text) <= 280


def test_without_topics_or_research_posts_are_still_valid() -> None:
    drafts = TemplateGeneration().generate(make_brief(topics=[], research=[]))
    assert len(drafts) == 3 and all(fits_platform(d.platform, d.text) for d in drafts)


def test_hashtags_are_camel_cased_words() -> None:
    assert hashtag("open-source AI") == "#OpenSourceAI"
    assert hashtag("  ") == ""
