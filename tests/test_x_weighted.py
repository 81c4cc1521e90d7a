"""X's weighted length against the official twitter-text conformance suite and the official library.

Every expectation here comes from twitter-text itself, never from our code: the conformance
file of the twitter/twitter-text repository and answers of the official JavaScript library
(3.1.0), vendored in ``tests/fixtures/twitter_text`` (see its README for each file's source).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import text_limits
from app.x_weighted import CONFIG_V2, CONFIG_V3, parse_x_text, url_spans, x_weighted_length

FIXTURES = Path(__file__).parent / "fixtures" / "twitter_text"
CONFORMANCE = json.loads((FIXTURES / "validate_weighted.json").read_text(encoding="utf-8"))
ORACLE = json.loads((FIXTURES / "oracle_v3.json").read_text(encoding="utf-8"))
RANDOM_ORACLE = json.loads((FIXTURES / "oracle_random_v3.json").read_text(encoding="utf-8"))

#: conformance field -> ParsedText attribute
FIELDS = {
    "weightedLength": "weighted_length",
    "valid": "valid",
    "permillage": "permillage",
    "displayRangeStart": "display_range_start",
    "displayRangeEnd": "display_range_end",
    "validRangeStart": "valid_range_start",
    "validRangeEnd": "valid_range_end",
}


def _conformance_cases() -> list[Any]:
    cases = []
    for group, spec in CONFORMANCE["groups"].items():
        config = CONFIG_V2 if spec["config"] == "v2" else CONFIG_V3
        for case in spec["cases"]:
            cases.append(pytest.param(config, case, id=f"{group}: {case['description']}"))
    return cases


def test_the_vendored_files_name_their_source() -> None:
    assert "conformance/validate.yml" in CONFORMANCE["source"]
    assert "twitter-text 3.1.0" in ORACLE["source"] and "twitter-text 3.1.0" in RANDOM_ORACLE["source"]


def test_the_conformance_file_holds_the_24_v3_cases_and_20_v2_cases() -> None:
    groups = CONFORMANCE["groups"]
    v3 = [c for g in groups.values() if g["config"] != "v2" for c in g["cases"]]
    v2 = [c for g in groups.values() if g["config"] == "v2" for c in g["cases"]]
    assert (len(v3), len(v2)) == (24, 20)


@pytest.mark.parametrize(("config", "case"), _conformance_cases())
def test_official_conformance_case(config: Any, case: dict[str, Any]) -> None:
    parsed = parse_x_text(case["text"], config)
    got = {name: getattr(parsed, FIELDS[name]) for name in case["expected"]}
    assert got == case["expected"]


@pytest.mark.parametrize("oracle", [ORACLE, RANDOM_ORACLE], ids=["oracle_v3", "oracle_random_v3"])
def test_equal_to_the_official_library_on_every_oracle_text(oracle: dict[str, Any]) -> None:
    cases = oracle["cases"]
    assert len(cases) > 100
    differing = [
        (c["text"], parse_x_text(c["text"]).weighted_length, c["weightedLength"])
        for c in cases
        if (parse_x_text(c["text"]).weighted_length, parse_x_text(c["text"]).valid)
        != (c["weightedLength"], c["valid"])
    ]
    assert differing == []


def test_the_oracle_covers_texts_over_the_limit_and_under_it() -> None:
    lengths = [c["weightedLength"] for c in ORACLE["cases"] + RANDOM_ORACLE["cases"]]
    assert any(n > 280 for n in lengths) and any(n <= 280 for n in lengths)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x" * 257 + " example.xyz", 281),  # the project's old allow-list said 269: X refuses it
        ("see example.shop and example.es", 4 + 23 + 5 + 23),
        ("https://example.xyz,https://example.es", 23 + 1 + 23),  # comma-joined URLs
        ("Foo_(bar)", 9),
        ("\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1", 8),  # unknown to twemoji 11: not one emoji
        ("a\r\nb", 4),  # a CRLF is two characters to X
        ("\u00a9", 1),
    ],
)
def test_texts_the_old_counter_got_wrong(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected == text_limits.platform_length("twitter", text)


def test_links_found_after_an_ideographic_full_stop() -> None:
    # Python's idna codec refuses this domain; twitter-text links it (twitter-text-parser does not).
    assert url_spans("\u3000\u3002example.xyz") == [(2, 13)]


def test_invalid_characters_make_a_text_unpostable() -> None:
    assert not parse_x_text("hello\ufeff").valid
    assert text_limits.limit_error("twitter", "hello\ufeff") == "text contains characters X refuses (U+FEFF)"
    assert not text_limits.fits_platform("twitter", "hello\ufffe")
