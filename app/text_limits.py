"""How long a post is in each platform's own arithmetic, and what to do when it is too long.

Each platform's rule and limit are its registry entry's (:mod:`app.platforms`). X does not count
characters: it counts a *weighted* length (twitter-text v3 configuration), in which a URL costs
23 whatever its length, Latin text costs 1 per code point and CJK or emoji cost 2. A post that
passes ``len(text) <= 280`` can still be refused with a 403, so every draft is checked here
before it is stored, with :mod:`app.x_weighted` (the official rules, conformance-tested).
LinkedIn counts the code points of the commentary.

Pure functions, no I/O: the generators validate with them and the offline one truncates with them.
"""

from __future__ import annotations

import re
import unicodedata

from app.platforms import get_platform
from app.x_weighted import url_spans

#: Appended by :func:`truncate_to_limit` where text was cut.
ELLIPSIS = "\u2026"

__all__ = [
    "ELLIPSIS", "fits_platform", "limit_error", "normalize_newlines", "platform_length", "platform_limit",
    "truncate_to_limit",
]


def normalize_newlines(text: str) -> str:
    """``\r\n`` and lone ``\r`` become ``\n``.

    Browsers submit a textarea's line breaks as ``\r\n``; stored and published texts use
    ``\n`` only, so a post is the same text (and the same weighted length) whichever way it
    arrived: admin form, CLI argument or generator.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n")


def platform_length(platform: str, text: str) -> int:
    """The length of ``text`` as ``platform`` counts it (ValueError for an unknown platform)."""
    return get_platform(platform).length(text)


def platform_limit(platform: str) -> int:
    """The maximum :func:`platform_length` that ``platform`` accepts."""
    return get_platform(platform).max_length


def fits_platform(platform: str, text: str) -> bool:
    """Whether ``platform`` would accept ``text`` as far as length goes (blank text never fits,
    nor does text with characters the platform refuses)."""
    return limit_error(platform, text) is None


def limit_error(platform: str, text: str) -> str | None:
    """Why ``text`` cannot be posted on ``platform`` for its length, or None if it can."""
    entry = get_platform(platform)
    if not text.strip():
        return "text is blank"
    refused = entry.refused_characters(text) if entry.refused_characters else []
    if refused:
        names = ", ".join(f"U+{ord(c):04X}" for c in refused)
        return f"text contains characters {entry.display_name} refuses ({names})"
    length = entry.length(text)
    if length <= entry.max_length:
        return None
    return f"text is {length} {entry.length_unit}; {entry.display_name} allows {entry.max_length}"


def truncate_to_limit(platform: str, text: str) -> str:
    """``text`` unchanged if it fits, else cut at a word boundary with an ellipsis appended.

    Meant for template text: cutting at whitespace never splits a URL or an emoji sequence.
    A single word longer than the limit is cut by code points as a last resort.
    """
    limit = platform_limit(platform)
    text = unicodedata.normalize("NFC", text).strip()
    if platform_length(platform, text) <= limit:
        return text

    def candidate(end: int) -> str:
        kept = text[:end].rstrip().rstrip(",;:-\u2013\u2014")
        # An ellipsis glued to a link could be read as part of it by some clients.
        glue = " " if kept and url_spans(kept.rsplit(None, 1)[-1]) else ""
        return kept + glue + ELLIPSIS

    boundaries = [m.start() for m in re.finditer(r"\s+", text)]
    best: str | None = None
    for end in boundaries:  # increasing, so the weighted length only grows
        cut = candidate(end)
        if platform_length(platform, cut) > limit:
            break
        best = cut
    if best and best != ELLIPSIS:
        return best
    end = len(text)
    while end > 0 and platform_length(platform, text[:end] + ELLIPSIS) > limit:
        end -= 1
    return text[:end] + ELLIPSIS
