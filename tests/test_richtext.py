"""Counting and facets for the open networks: graphemes, UTF-8 byte ranges, Mastodon's URLs."""

from __future__ import annotations

import pytest

from app.richtext import (
    Facet,
    bluesky_facets,
    facet_records,
    graphemes,
    mastodon_length,
    mention_handles,
)


def covered(text: str, facet: Facet) -> str:
    return text.encode("utf-8")[facet.byte_start:facet.byte_end].decode("utf-8")


@pytest.mark.parametrize("prefix", [
    "",
    "Family 👨\u200d👩\u200d👧 and flags 🇯🇵 ",  # a ZWJ sequence (18 bytes) and a flag (8 bytes)
    "日本語のテキスト ",  # CJK: 3 bytes each
    "cafe\u0301 nai\u0308ve ",  # combining marks: one grapheme, two code points
    "mixed 🎉 中文 e\u0301 ",
])
def test_a_link_after_emoji_cjk_or_combining_marks_is_covered_byte_for_byte(prefix):
    text = f"{prefix}read https://example.org/a?b=1&c=(2). #Python @alice.test"
    facets = bluesky_facets(text, {"alice.test": "did:plc:alice"})
    assert [(f.kind, covered(text, f)) for f in facets] == [
        ("link", "https://example.org/a?b=1&c=(2)"), ("tag", "#Python"), ("mention", "@alice.test")]
    link = facets[0]
    assert link.byte_start == len(f"{prefix}read ".encode())  # bytes, not characters
    assert link.byte_start != len(f"{prefix}read ") or prefix == ""


def test_an_unresolved_mention_stays_plain_text_and_handles_are_listed_once():
    text = "hi @bob.test and @Bob.test and @nobody.test"
    assert mention_handles(text) == ["bob.test", "nobody.test"]
    facets = bluesky_facets(text, {"bob.test": "did:plc:bob"})
    assert [covered(text, f) for f in facets] == ["@bob.test", "@Bob.test"]


def test_tags_inside_urls_digits_only_and_trailing_punctuation():
    text = "see https://example.org/#anchor, #2024 is not a tag but #rust! is"
    facets = bluesky_facets(text)
    assert [(f.kind, f.value) for f in facets] == [("link", "https://example.org/#anchor"), ("tag", "rust")]


def test_facet_records_have_the_lexicon_shape():
    [record] = facet_records([Facet(3, 10, "tag", "python")])
    assert record == {"index": {"byteStart": 3, "byteEnd": 10},
                      "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "python"}]}


def test_graphemes_count_what_a_reader_sees():
    assert graphemes("e\u0301") == 1
    assert graphemes("👨\u200d👩\u200d👧") == 1
    assert graphemes("🇯🇵🇫🇷") == 2
    assert graphemes("日本") == 2


def test_mastodon_counts_urls_as_reserved_and_remote_mentions_by_user_only():
    url = "https://example.org/" + "a" * 100
    assert mastodon_length(url) == 23
    assert mastodon_length(url, reserved_per_url=30) == 30
    assert mastodon_length("@ada@social.example hi") == len("@ada hi")
    assert mastodon_length(f"{url}.") == 24  # the full stop is not part of the URL
    assert mastodon_length("e\u0301🎉") == 2
