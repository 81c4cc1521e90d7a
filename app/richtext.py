"""How the open networks count a post and mark up its links, mentions and hashtags.

Bluesky and Mastodon both count *grapheme clusters* (what a reader sees as one character: a
letter with its combining accents, a flag, a family emoji), not code points. Bluesky sends the
text as it is plus *facets*: byte ranges of the UTF-8 encoding tagged as a link, a mention (by
DID) or a hashtag (lexicon ``app.bsky.richtext.facet``). A facet whose range is off by one
byte underlines the wrong text, or is refused, so the ranges are computed here and tested with
emoji, CJK and combining marks before a link. Mastodon counts every URL as a fixed reserved
length and a remote mention ``@user@domain`` as ``@user`` only.

Pure functions, no I/O (a mention's DID is looked up by the provider and passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regex

__all__ = [
    "DEFAULT_RESERVED_PER_URL", "Facet", "bluesky_facets", "facet_records", "graphemes",
    "mastodon_length", "mention_handles",
]

#: Mastodon's ``characters_reserved_per_url`` on a default instance: what any URL counts.
DEFAULT_RESERVED_PER_URL = 23
#: Bluesky's longest hashtag, in graphemes (lexicon ``app.bsky.richtext.facet#tag``).
MAX_TAG_GRAPHEMES = 64

#: A URL: scheme, then anything up to whitespace (trailing punctuation is trimmed after).
_URL_RE = regex.compile(r"(?:(?<=^)|(?<=[\s(]))https?://[^\s]+", regex.IGNORECASE)
#: A mention: ``@`` and a handle with at least one dot (``alice.bsky.social``), after a space.
_MENTION_RE = regex.compile(
    r"(?:(?<=^)|(?<=[\s(]))@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)")
#: A hashtag: ``#`` (or the full-width one) and a word that is not only digits.
_TAG_RE = regex.compile(r"(?:(?<=^)|(?<=\s))[#\uFF03]((?!\uFE0F)[^\s\u00AD\u2060\u200A\u200B\u200C\u200D\u20E2]+)")
#: Mastodon's mention: ``@user`` optionally followed by ``@domain``; only ``@user`` counts.
_MASTODON_MENTION_RE = regex.compile(r"(?:(?<=^)|(?<=[^\w/]))(@\w+(?:[.\w-]*\w)?)(@[\w.-]+\w)?", regex.IGNORECASE)
#: Trimmed from the end of a URL or hashtag: sentence punctuation is not part of it.
_TRAILING = ".,;:!?\"'"


def graphemes(text: str) -> int:
    """The number of extended grapheme clusters: how Bluesky and Mastodon count a post."""
    return len(regex.findall(r"\X", text))


@dataclass(frozen=True)
class Facet:
    """One annotated range of a post: ``byte_start``/``byte_end`` index its UTF-8 bytes
    (start inclusive, end exclusive); ``kind`` is ``link``, ``mention`` or ``tag``."""

    byte_start: int
    byte_end: int
    kind: str
    value: str


def _trim(match_text: str) -> str:
    """A URL without trailing punctuation, and without a closing parenthesis it did not open."""
    text = match_text.rstrip(_TRAILING)
    if text.endswith(")") and text.count("(") < text.count(")"):
        text = text[:-1].rstrip(_TRAILING)
    return text


def _byte_range(text: str, start: int, end: int) -> tuple[int, int]:
    """Character offsets ``[start, end)`` of ``text`` as offsets into its UTF-8 encoding."""
    byte_start = len(text[:start].encode("utf-8"))
    return byte_start, byte_start + len(text[start:end].encode("utf-8"))


def mention_handles(text: str) -> list[str]:
    """The handles mentioned in ``text`` (``@alice.bsky.social`` -> ``alice.bsky.social``),
    each once, in order: the provider resolves them to DIDs."""
    return list(dict.fromkeys(m.group(1).lower() for m in _MENTION_RE.finditer(text)))


def bluesky_facets(text: str, dids: Mapping[str, str] | None = None) -> list[Facet]:
    """The facets of ``text``: every http(s) link, every hashtag, and every mention whose
    handle ``dids`` resolves (an unresolved handle stays plain text, as Bluesky's app does).

    Sorted by position; ranges never overlap (a hashtag inside a URL is part of the URL).
    """
    dids = dids or {}
    facets: list[Facet] = []
    taken: list[tuple[int, int]] = []
    for match in _URL_RE.finditer(text):
        url = _trim(match.group(0))
        start, end = match.start(), match.start() + len(url)
        facets.append(Facet(*_byte_range(text, start, end), "link", url))
        taken.append((start, end))
    for match in _MENTION_RE.finditer(text):
        handle = match.group(1).lower()
        if handle in dids and not _inside(match.start(), taken):
            facets.append(Facet(*_byte_range(text, match.start(), match.end()), "mention", dids[handle]))
    for match in _TAG_RE.finditer(text):
        tag = _trim(match.group(1))
        if not tag or tag.isdigit() or graphemes(tag) > MAX_TAG_GRAPHEMES or _inside(match.start(), taken):
            continue
        end = match.start(1) + len(tag)
        facets.append(Facet(*_byte_range(text, match.start(), end), "tag", tag))
    return sorted(facets, key=lambda f: f.byte_start)


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def facet_records(facets: list[Facet]) -> list[dict[str, Any]]:
    """Facets in the lexicon's shape (``app.bsky.richtext.facet``), ready for a post record."""
    features = {
        "link": lambda v: {"$type": "app.bsky.richtext.facet#link", "uri": v},
        "mention": lambda v: {"$type": "app.bsky.richtext.facet#mention", "did": v},
        "tag": lambda v: {"$type": "app.bsky.richtext.facet#tag", "tag": v},
    }
    return [{"index": {"byteStart": f.byte_start, "byteEnd": f.byte_end}, "features": [features[f.kind](f.value)]}
            for f in facets]


def mastodon_length(text: str, reserved_per_url: int = DEFAULT_RESERVED_PER_URL) -> int:
    """``text``'s length as Mastodon counts it: graphemes, every URL as ``reserved_per_url``,
    a remote mention ``@user@domain`` as ``@user``."""
    counted = _URL_RE.sub(lambda m: "x" * reserved_per_url + m.group(0)[len(_trim(m.group(0))):], text)
    counted = _MASTODON_MENTION_RE.sub(lambda m: m.group(1), counted)
    return graphemes(counted)
