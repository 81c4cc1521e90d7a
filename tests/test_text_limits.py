"""Platform length arithmetic: X's weighted length (twitter-text v3) and LinkedIn's code points.

The official conformance suite and oracle are replayed in tests/test_x_weighted.py.
"""

from __future__ import annotations

import pytest

from app.platforms import PLATFORMS
from app.text_limits import ELLIPSIS, fits_platform, limit_error, truncate_to_limit
from app.x_weighted import x_weighted_length

X_MAX_WEIGHTED = PLATFORMS["twitter"].max_length
LINKEDIN_MAX_CHARS = PLATFORMS["linkedin"].max_length


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("", 0),
        ("café", 4),
        ("cafe\u0301", 4),  # NFC first: e + combining acute is one code point
        ("Привет мир", 10),  # Cyrillic is below 4352: weight 1
        ("日本語", 6),  # CJK weighs 2
        ("한국어", 6),
        ("\u2018quoted\u2019 \u2014 dash", 15),  # general punctuation 8208-8223 weighs 1
        ("\u2026", 2),  # the ellipsis (8230) is outside the light ranges
        ("👍", 2),
        ("👍🏽", 2),  # skin tone modifier: one emoji
        ("👨\u200d👩\u200d👧\u200d👦", 2),  # ZWJ family: one emoji
        ("🏳\ufe0f\u200d🌈", 2),
        ("🇫🇷🇩🇪", 4),  # two flags
        ("1\ufe0f\u20e3", 2),  # keycap
        ("❤\ufe0f", 2),
        ("𝐁", 2),  # an astral non-emoji code point counts once (twitter-text joins surrogates)
        ("https://example.com", 23),
        ("https://example.com/" + "a" * 200, 23),
        ("http://t.co", 23),  # short URLs are also 23
        ("read https://example.com/x.", 5 + 23 + 1),  # trailing dot is not part of the URL
        ("see example.com now", 4 + 23 + 4),  # bare domains are links too
        ("a.b is not a link", 17),
        ("https://example.com/\u2026", 25),  # the ellipsis is not part of the URL
        # A non-ASCII path ends the link for twitter-text too (27 in the official library).
        ("https://example.com/日本", 27),
        ("two https://a.example.org/1 https://b.example.org/2", 4 + 23 + 1 + 23),
    ],
)
def test_x_weighted_length(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


def test_exactly_280_fits_and_281_does_not() -> None:
    assert fits_platform("twitter", "a" * 280)
    assert not fits_platform("twitter", "a" * 281)
    assert fits_platform("twitter", "日" * 140)
    assert not fits_platform("twitter", "日" * 140 + "a")
    # 256 + 1 + 23 (figures from the official twitter-text 3.1.0). A URL glued to a letter is
    # not a link to X: every character of it counts.
    assert fits_platform("twitter", "a" * 256 + " https://example.com/" + "x" * 300)
    assert not fits_platform("twitter", "a" * 257 + " https://example.com/")
    assert x_weighted_length("a" * 257 + "https://example.com/") == 257 + 20


def test_linkedin_counts_code_points_after_nfc() -> None:
    assert fits_platform("linkedin", "é" * LINKEDIN_MAX_CHARS)
    assert fits_platform("linkedin", "e\u0301" * LINKEDIN_MAX_CHARS)  # 6000 code points before NFC
    assert not fits_platform("linkedin", "a" * (LINKEDIN_MAX_CHARS + 1))
    assert fits_platform("linkedin", "日" * LINKEDIN_MAX_CHARS)  # no weighting on LinkedIn


def test_blank_text_never_fits() -> None:
    assert not fits_platform("twitter", "   \n")
    assert limit_error("linkedin", "") == "text is blank"


def test_limit_error_explains_the_excess() -> None:
    assert limit_error("twitter", "a" * 280) is None
    assert limit_error("twitter", "a" * 291) == "text is 291 weighted characters; X allows 280"
    assert limit_error("linkedin", "a" * 3001) == "text is 3001 characters; LinkedIn allows 3000"


def test_unknown_platform_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="twitter, linkedin"):
        fits_platform("myspace", "hi")


def test_truncate_leaves_fitting_text_alone() -> None:
    assert truncate_to_limit("twitter", "short post #AI") == "short post #AI"


def test_truncate_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    text = "word " * 100
    cut = truncate_to_limit("twitter", text)
    assert cut.endswith("word" + ELLIPSIS)
    assert x_weighted_length(cut) <= X_MAX_WEIGHTED
    assert x_weighted_length(cut) > X_MAX_WEIGHTED - 7  # no more than a word is lost


def test_truncate_never_splits_a_url() -> None:
    text = "a" * 250 + " https://example.org/" + "x" * 50 + " tail words here"
    cut = truncate_to_limit("twitter", text)
    assert x_weighted_length(cut) <= X_MAX_WEIGHTED
    # 250 + 1 + 23 (the URL, whatever its length) + 1 + 2 (the ellipsis) = 277; "tail" would not fit.
    assert cut == "a" * 250 + " https://example.org/" + "x" * 50 + " " + ELLIPSIS


def test_truncate_keeps_linkedin_paragraphs() -> None:
    text = ("A paragraph of words. " * 30 + "\n\n") * 10
    cut = truncate_to_limit("linkedin", text)
    assert len(cut) <= LINKEDIN_MAX_CHARS and "\n\n" in cut and cut.endswith(ELLIPSIS)


def test_truncate_hard_cuts_a_single_giant_word() -> None:
    cut = truncate_to_limit("twitter", "x" * 500)
    assert cut == "x" * 278 + ELLIPSIS
    assert x_weighted_length(cut) == X_MAX_WEIGHTED
