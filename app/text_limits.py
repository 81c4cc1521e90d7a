"""How long a post is in each platform's own arithmetic, and what to do when it is too long.

X does not count characters: it counts a *weighted* length (twitter-text v3 configuration), in
which a URL costs 23 whatever its length, Latin text costs 1 per code point and CJK or emoji cost 2.
A post that passes ``len(text) <= 280`` can still be refused with a 403, so every draft is checked
here before it is stored. LinkedIn counts the code points of the commentary.

Pure functions, no I/O: the generators validate with them and the offline one truncates with them.
"""

from __future__ import annotations

import re
import unicodedata

#: The longest post X accepts, in weighted characters.
X_MAX_WEIGHTED = 280
#: The longest commentary LinkedIn accepts, in code points.
LINKEDIN_MAX_CHARS = 3000
#: What X's link shortener makes of any URL, in weighted characters.
X_URL_WEIGHT = 23
#: Appended by :func:`truncate_to_limit` where text was cut.
ELLIPSIS = "\u2026"

PLATFORMS = ("twitter", "linkedin")

# twitter-text v3: these code point ranges weigh 1, everything else 2.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

# URLs with a scheme, and bare domains on common TLDs (twitter-text links "example.com" too).
# An approximation of twitter-text's extractor, which knows every TLD; trailing punctuation is
# not part of the link, as in twitter-text.
_URL_RE = re.compile(
    r"""(?:https?://[!#-;=?-~]+
        |(?<![\w@.])(?:www\.)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+
           (?:com|org|net|io|co|ai|dev|app|edu|gov|info|biz|me|tv|ly|uk|de|fr|eu|us|ca)
           (?![\w-])(?:/[!#-;=?-~]*)?)""",
    re.IGNORECASE | re.VERBOSE,
)
_TRAILING_PUNCT = ".,;:!?)]}'\""

# An emoji "grapheme-ish" sequence, weighed 2 as a whole like twitter-text's emoji parsing:
# a flag (two regional indicators), a keycap, or a pictograph with its variation selector,
# skin tone and tag modifiers, optionally joined to more pictographs by ZWJ (families, professions).
# This approximates Unicode's emoji data with its blocks; it over-counts rather than under-counts.
_PICTO = (
    r"[\U0001F000-\U0001FAFF\u2300-\u23FF\u2600-\u27BF\u2B00-\u2BFF\u2190-\u21FF"
    r"\u25A0-\u25FF\u2934\u2935\u3030\u303D\u3297\u3299\u203C\u2049\u2122\u2139\u24C2]"
    r"|[\u00A9\u00AE]\uFE0F"
)
_MODS = r"(?:\uFE0F|[\U0001F3FB-\U0001F3FF]|[\U000E0020-\U000E007F])*"
_EMOJI_RE = re.compile(
    rf"[\U0001F1E6-\U0001F1FF]{{2}}"
    rf"|[0-9#*]\uFE0F?\u20E3"
    rf"|(?:{_PICTO}){_MODS}(?:\u200D(?:{_PICTO}){_MODS})*"
)


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


def _code_point_weight(char: str) -> int:
    code = ord(char)
    return 1 if any(lo <= code <= hi for lo, hi in _LIGHT_RANGES) else 2


def _url_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _URL_RE.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in _TRAILING_PUNCT:
            end -= 1
        spans.append((start, end))
    return spans


def x_weighted_length(text: str) -> int:
    """The length X will count for ``text`` (twitter-text v3 weighting, NFC-normalised first).

    URLs weigh 23 each; code points in 0-4351, 8192-8205, 8208-8223 and 8242-8247 weigh 1;
    every other code point weighs 2. Emoji sequences (ZWJ families, skin tones, flags, keycaps)
    weigh 2 in total, as twitter-text's emoji parsing does; detecting them uses Unicode blocks
    rather than the full emoji data, an approximation that errs towards counting more.
    """
    text = unicodedata.normalize("NFC", text)
    urls = dict(_url_spans(text))
    total = 0
    i = 0
    while i < len(text):
        if i in urls:
            total += X_URL_WEIGHT
            i = urls[i]
            continue
        emoji = _EMOJI_RE.match(text, i)
        if emoji:
            total += 2
            i = emoji.end()
            continue
        total += _code_point_weight(text[i])
        i += 1
    return total


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
    """Whether ``platform`` would accept ``text`` as far as length goes (blank text never fits)."""
    return bool(text.strip()) and platform_length(platform, text) <= platform_limit(platform)


def limit_error(platform: str, text: str) -> str | None:
    """Why ``text`` cannot be posted on ``platform`` for its length, or None if it can."""
    if not text.strip():
        return "text is blank"
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
        glue = " " if _URL_RE.search(kept.rsplit(None, 1)[-1] if kept else "") else ""
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
