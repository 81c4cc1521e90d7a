"""How long a post is in each platform's own arithmetic, and what to do when it is too long.

X does not count characters: it counts a *weighted* length (twitter-text v3 configuration), in
which a URL costs 23 whatever its length, Latin text costs 1 per code point and CJK or emoji cost 2.
A post that passes ``len(text) <= 280`` can still be refused with a 403, so every draft is checked
here before it is stored, with :mod:`app.x_weighted` (the official rules, conformance-tested).
LinkedIn counts the code points of the commentary.

Pure functions, no I/O: the generators validate with them and the offline one truncates with them.
"""

from __future__ import annotations

import re
import unicodedata

from app.x_weighted import invalid_characters, url_spans, x_weighted_length

#: The longest post X accepts, in weighted characters.
X_MAX_WEIGHTED = 280
#: The longest commentary LinkedIn accepts, in code points.
LINKEDIN_MAX_CHARS = 3000
#: What X's link shortener makes of any URL, in weighted characters.
X_URL_WEIGHT = 23
#: Appended by :func:`truncate_to_limit` where text was cut.
ELLIPSIS = "\u2026"

PLATFORMS = ("twitter", "linkedin")

__all__ = [
    "ELLIPSIS", "LINKEDIN_MAX_CHARS", "PLATFORMS", "X_MAX_WEIGHTED", "X_URL_WEIGHT", "fits_platform",
    "limit_error", "platform_length", "platform_limit", "truncate_to_limit", "x_weighted_length",
]


def normalize_newlines(text: str) -> str:
    """``\r\n`` and lone ``\r`` become ``\n``.

    Browsers submit a textarea's line breaks as ``\r\n``; stored and published texts use
    ``\n`` only, so a post is the same text (and the same weighted length) whichever way it
    arrived: admin form, CLI argument or generator.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")


def platform_length(platform: str, text: str) -> int:
    """The length of ``text`` as ``platform`` counts it."""
    _check_platform(platform)
    if platform == "twitter":
        return x_weighted_length(text)
    return len(unicodedata.normalize("NFC", text))


def platform_limit(platform: str) -> int:
    """The maximum :func:`platform_length` that ``platform`` accepts."""
    _check_platform(platform)
    return X_MAX_WEIGHTED if platform == "twitter" else LINKEDIN_MAX_CHARS


def fits_platform(platform: str, text: str) -> bool:
    """Whether ``platform`` would accept ``text`` as far as length goes (blank text never fits,
    nor does text with characters X refuses)."""
    _check_platform(platform)
    return limit_error(platform, text) is None


def limit_error(platform: str, text: str) -> str | None:
    """Why ``text`` cannot be posted on ``platform`` for its length, or None if it can."""
    if not text.strip():
        return "text is blank"
    if platform == "twitter":
        refused = invalid_characters(text)
        if refused:
            names = ", ".join(f"U+{ord(c):04X}" for c in refused)
            return f"text contains characters X refuses ({names})"
    length, limit = platform_length(platform, text), platform_limit(platform)
    if length <= limit:
        return None
    if platform == "twitter":
        return f"text is {length} weighted characters; X allows {limit}"
    return f"text is {length} characters; LinkedIn allows {limit}"


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
