"""X's weighted length, counted exactly as the official twitter-text 3.1.0 ``parseTweet`` counts it.

X refuses a post whose weighted length is over 280 (config v3): a URL weighs 23 whatever its
length, code points in four "light" ranges weigh 1, everything else 2, and an emoji sequence
weighs 2 in total. Which text is a URL and which is an emoji is where hand-written rules go
wrong (TLD lists, IDN hosts, punctuation inside links, ZWJ sequences), so the two hard parts
come from maintained ports of the official library:

* URLs: ``twitter-text-parser`` (PyPI), a port of twitter-text's ``extractUrlsWithIndices``
  with its TLD lists, punycode and t.co rules.
* Emoji: the official twemoji-parser 11.0.2 pattern that twitter-text 3.1.0 bundles
  (:mod:`app.x_emoji`). ``twitter-text-parser``'s own ``parse_tweet`` ships Unicode emoji 12
  data and folds ``\\r\\n`` into ``\\n``, so it counts 5 of the 139 texts of the official-library
  oracle differently, two of them *lower* than X (a ZWJ sequence unknown to twemoji 11 costs
  8 there, 2 in the port; a CRLF costs 2, not 1). Under-counting is the one error that lets X
  refuse a generated post, so the weighting loop below is the official one, line for line,
  over UTF-16 code units as JavaScript runs it.

The conformance suite (``conformance/validate.yml``) and the oracle are replayed in
``tests/test_x_weighted.py``. Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from app.x_emoji import TWEMOJI_11

#: Code points X treats as invalid in a post (twitter-text ``invalidCharsGroup``).
INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")


@dataclass(frozen=True)
class WeightConfig:
    """One twitter-text weighting configuration (``configs.js``); weights are scaled integers."""

    version: int
    max_weighted_length: int
    scale: int
    default_weight: int
    transformed_url_length: int
    emoji_parsing: bool
    ranges: tuple[tuple[int, int, int], ...]  # (first code unit, last code unit, weight)


_LIGHT = ((0, 4351, 100), (8192, 8205, 100), (8208, 8223, 100), (8242, 8247, 100))
#: twitter-text config v2 (2017): weighting without emoji discount.
CONFIG_V2 = WeightConfig(2, 280, 100, 200, 23, False, _LIGHT)
#: twitter-text config v3 (2018-): what X counts today, the default of ``parseTweet``.
CONFIG_V3 = WeightConfig(3, 280, 100, 200, 23, True, _LIGHT)


@dataclass(frozen=True)
class ParsedText:
    """``parseTweet``'s answer; ranges are inclusive UTF-16 indices into the original text."""

    weighted_length: int
    valid: bool
    permillage: int
    valid_range_start: int
    valid_range_end: int
    display_range_start: int
    display_range_end: int


def _utf16_units(text: str) -> str:
    """``text`` as a string of UTF-16 code units (astral characters become surrogate pairs)."""
    data = text.encode("utf-16-le", "surrogatepass")
    return "".join(chr(int.from_bytes(data[i : i + 2], "little")) for i in range(0, len(data), 2))


def _utf16_offsets(text: str) -> list[int]:
    """For each code point index of ``text`` (and its end), the UTF-16 index it starts at."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + (2 if ord(char) > 0xFFFF else 1))
    return offsets


#: twitter-text's limits on a URL and on a t.co slug, in characters.
MAX_URL_LENGTH = 4096
MAX_TCO_SLUG_LENGTH = 40
#: The longest DNS label (RFC 1035), in characters once punycode-encoded.
MAX_DOMAIN_LABEL_LENGTH = 63


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    # Imported on first use: the package reads a 400 kB emoji file when imported.
    from twitter_text.regexp.extract_url import extract_url
    from twitter_text.regexp.invalid_url_without_protocol_preceding_chars import (
        invalid_url_without_protocol_preceding_chars,
    )
    from twitter_text.regexp.valid_ascii_domain import valid_ascii_domain
    from twitter_text.regexp.valid_tco_url import valid_tco_url

    return {"url": extract_url, "bad_before": invalid_url_without_protocol_preceding_chars,
            "ascii_domain": valid_ascii_domain, "tco": valid_tco_url}


def _idna_valid(domain: str, ascii_domain: re.Pattern[str]) -> bool:
    """twitter-text's ``idna.toAscii`` succeeds: every label encodes to 1-63 characters.

    Not Python's ``idna`` codec: that one applies nameprep and splits on ideographic full
    stops, refusing domains twitter-text links (``\u3000\u3002example.xyz``).
    """
    if domain[:4] == "xn--" and not ascii_domain.search(domain):
        return False
    for label in domain.split("."):
        encoded = label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
        if not 1 <= len(encoded) <= MAX_DOMAIN_LABEL_LENGTH:
            return False
    return True


def url_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) code point spans X links in ``text``: ``extractUrlsWithIndices``.

    The official loop over the official patterns (as ported by twitter-text-parser, whose own
    loop validates domains with Python's ``idna`` codec and so misses some links).
    """
    if "." not in text:
        return []
    patterns = _patterns()
    spans: list[tuple[int, int]] = []
    for match in patterns["url"].finditer(text):
        before, url, protocol, domain, path = match.group(2, 3, 4, 5, 7)
        end = match.end()
        start = end - len(url)
        if not _idna_valid(domain, patterns["ascii_domain"]):
            continue
        if len(protocol or "https://") + len(url) > MAX_URL_LENGTH:
            continue
        if not protocol:
            if patterns["bad_before"].search(before):
                continue
            found: list[list[int]] = []
            position = 0
            for ascii_match in patterns["ascii_domain"].finditer(domain):
                ascii_start = domain.index(ascii_match.group(0), position)
                position = ascii_start + len(ascii_match.group(0))
                found.append([start + ascii_start, start + position])
            if not found:
                continue
            if path:
                found[-1][1] = end
            spans.extend((a, b) for a, b in found)
        else:
            tco = patterns["tco"].search(url)
            if tco:
                if tco.group(1) and len(tco.group(1)) > MAX_TCO_SLUG_LENGTH:
                    continue
                end = start + len(tco.group(0))
            spans.append((start, end))
    return spans


def _weight(unit: str, config: WeightConfig) -> int:
    code = ord(unit)
    for first, last, weight in config.ranges:
        if first <= code <= last:
            return weight
    return config.default_weight


def parse_x_text(text: str, config: WeightConfig = CONFIG_V3) -> ParsedText:
    """twitter-text's ``parseTweet(text, config)``: weighted length, validity and ranges."""
    normalized = unicodedata.normalize("NFC", text)
    units = _utf16_units(normalized)
    offsets = _utf16_offsets(normalized)
    urls = {offsets[start]: offsets[end] - offsets[start] for start, end in url_spans(normalized)}
    emoji = {m.start(): m.end() - m.start() for m in TWEMOJI_11.finditer(units)} if config.emoji_parsing else {}

    scale = config.scale
    weighted = 0
    valid_display_index = 0
    valid = True
    index = 0
    while index < len(units):
        if index in urls:
            weighted += config.transformed_url_length * scale
            index += urls[index] - 1
        elif index in emoji:
            weighted += config.default_weight
            index += emoji[index] - 1
        else:
            if _is_surrogate_pair(units, index):
                index += 1
            weighted += _weight(units[index], config)
        if valid:
            valid = units[index] not in INVALID_CHARACTERS
        if valid and weighted <= config.max_weighted_length * scale:
            valid_display_index = index
        index += 1

    length = weighted // scale if weighted % scale == 0 else weighted / scale
    original_units = len(_utf16_units(text))
    return ParsedText(
        weighted_length=int(length),
        valid=valid and 0 < length <= config.max_weighted_length,
        permillage=math.floor(length / config.max_weighted_length * 1000),
        valid_range_start=0,
        valid_range_end=valid_display_index + original_units - len(units),
        display_range_start=0,
        display_range_end=original_units - 1 if original_units > 0 else 0,
    )


def _is_surrogate_pair(units: str, index: int) -> bool:
    return (
        index + 1 < len(units)
        and 0xD800 <= ord(units[index]) <= 0xDBFF
        and 0xDC00 <= ord(units[index + 1]) <= 0xDFFF
    )


def x_weighted_length(text: str) -> int:
    """The weighted length X counts for ``text`` (config v3)."""
    return parse_x_text(text).weighted_length


def invalid_characters(text: str) -> list[str]:
    """The characters of ``text`` X refuses in a post, in order of appearance, each once."""
    return list(dict.fromkeys(c for c in unicodedata.normalize("NFC", text) if c in INVALID_CHARACTERS))
