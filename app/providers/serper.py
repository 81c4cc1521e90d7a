"""Research with Serper (Google web and news results) over httpx, cached per query per day.

Serper bills per call, and a thousand users on the topic "AI" would otherwise pay a thousand
times for the same results: each endpoint's answer is cached under a key made of the endpoint,
the normalised query, country, language and recency window, for the UTC day. Research is a
read, so every transport failure is a :class:`TemporaryError` the caller may retry.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from app.clock import utcnow
from app.errors import InvalidValue
from app.providers.base import ResearchItem
from app.providers.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.providers.research_cache import ResearchCacheStore

#: Seconds allowed for the whole request (connect, write, read) to Serper.
DEFAULT_TIMEOUT = 10.0
#: Seconds allowed to open the connection; a refused or slow connect fails fast.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Google's ``tbs`` recency filter: results from the past day.
DEFAULT_RECENCY = "qdr:d"
#: Results requested per endpoint (Serper bills 10 results as one credit).
DEFAULT_NUM_RESULTS = 10
#: Recency windows Serper understands: past hour, day, week, month, year.
RECENCY_WINDOWS = ("qdr:h", "qdr:d", "qdr:w", "qdr:m", "qdr:y")
#: The endpoints queried by :meth:`SerperResearch.search`, in merge order.
ENDPOINTS = ("search", "news")
#: Longest cache key stored as-is (the column holds 500); longer queries are hashed.
MAX_CACHE_KEY_LENGTH = 480

_RELATIVE_RE = re.compile(
    r"^(?:(?P<n>\d+|an?|one)\s+)?(?P<unit>sec|second|min|minute|hr|hour|day|week|month|year)s?\s+ago$"
)
_UNIT_SECONDS = {
    "sec": 1, "second": 1, "min": 60, "minute": 60, "hr": 3600, "hour": 3600,
    "day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400,
}  # fmt: skip
_ABSOLUTE_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%Y-%m-%d", "%b %d %Y")
_TRACKING_PARAMS = ("fbclid", "gclid", "mc_cid", "mc_eid", "ref", "ref_src")


def parse_result_date(value: object, now: datetime) -> datetime | None:
    """An aware UTC instant for Serper's ``date`` ("3 hours ago", "Nov 24, 2026"), else None.

    Relative dates are relative to ``now``, which must be when the results were fetched;
    a month counts as 30 days. Absolute dates mean midnight UTC that day.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.strip().lower().split())
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    if text in ("just now", "now"):
        return now
    if text == "yesterday":
        return now - timedelta(days=1)
    match = _RELATIVE_RE.match(text)
    if match:
        count = match["n"]
        n = int(count) if count and count.isdigit() else 1
        return now - timedelta(seconds=n * _UNIT_SECONDS[match["unit"]])
    for fmt in _ABSOLUTE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def normalise_link(link: str) -> str:
    """A link reduced for duplicate detection: no scheme, www, tracking params, fragment or final /."""
    parts = urlsplit(link.strip())
    host = parts.netloc.lower().removeprefix("www.")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS
    ]
    path = parts.path.rstrip("/")
    return f"{host}{path}" + (f"?{urlencode(sorted(query))}" if query else "")


def _normalise_title(title: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", title.casefold()).split())


def rank_and_deduplicate(items: list[ResearchItem]) -> list[ResearchItem]:
    """Newest first, undated last, keeping the newest of results sharing a link or a title."""
    order = sorted(
        enumerate(items),
        key=lambda pair: (
            pair[1].published_at is None,
            -(pair[1].published_at.timestamp() if pair[1].published_at else 0.0),
            pair[0],
        ),
    )
    seen_links: set[str] = set()
    seen_titles: set[str] = set()
    result = []
    for _, item in order:
        link, title = normalise_link(item.link), _normalise_title(item.title)
        if link in seen_links or (title and title in seen_titles):
            continue
        seen_links.add(link)
        seen_titles.add(title)
        result.append(item)
    return result


def cache_key(endpoint: str, topic: str, country: str, language: str, recency: str) -> str:
    """The shared cache key: the same topic, locale and window on the same endpoint share it."""
    query = " ".join(topic.lower().split())
    key = f"serper:{endpoint}:{country}:{language}:{recency}:{query}"
    if len(key) > MAX_CACHE_KEY_LENGTH:
        digest = hashlib.sha256(query.encode()).hexdigest()
        key = f"serper:{endpoint}:{country}:{language}:{recency}:sha256:{digest}"
    return key


def _item_to_dict(item: ResearchItem) -> dict[str, Any]:
    return {
        "title": item.title,
        "link": item.link,
        "snippet": item.snippet,
        "published_at": item.published_at.isoformat() if item.published_at else None,
        "source": item.source,
    }


def _item_from_dict(data: dict[str, Any]) -> ResearchItem:
    published = data.get("published_at")
    return ResearchItem(
        title=data["title"],
        link=data["link"],
        snippet=data.get("snippet") or "",
        published_at=datetime.fromisoformat(published) if published else None,
        source=data.get("source") or "",
    )


def _retry_at(response: httpx.Response, now: datetime) -> datetime | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return now + timedelta(seconds=int(value))
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SerperResearch:
    """:class:`~app.providers.base.ResearchProvider` backed by Serper's /search and /news."""

    name = "serper"
    offline = False

    def __init__(
        self,
        api_key: str,
        base_url: str,
        cache: ResearchCacheStore,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        recency: str = DEFAULT_RECENCY,
        num_results: int = DEFAULT_NUM_RESULTS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise InvalidValue(
                "SerperResearch needs an API key; set SERPER_API_KEY or use offline research"
            )
        if recency not in RECENCY_WINDOWS:
            raise InvalidValue(f"recency {recency!r} is not one of {', '.join(RECENCY_WINDOWS)}")
        self.cache = cache
        self.recency = recency
        self.num_results = num_results
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"X-API-KEY": api_key, "Content-Type": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT)),
            transport=transport,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> SerperResearch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def search(
        self, topic: str, *, language: str, country: str, now: datetime
    ) -> list[ResearchItem]:
        """Web and news results for ``topic`` within the recency window, deduplicated, newest first.

        Each endpoint is answered from the cache when it already ran today for this query.
        """
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        day = now.astimezone(UTC).strftime("%Y-%m-%d")
        gl, hl = country.strip().lower(), language.strip().lower()
        items: list[ResearchItem] = []
        for endpoint in ENDPOINTS:
            key = cache_key(endpoint, topic, gl, hl, self.recency)
            cached = self.cache.get(key, day)
            if cached is None:
                fetched = self._fetch(endpoint, topic.strip(), gl, hl, now)
                self.cache.put(key, day, [_item_to_dict(item) for item in fetched])
                items.extend(fetched)
            else:
                items.extend(_item_from_dict(data) for data in cached)
        return rank_and_deduplicate(items)

    def check(self) -> str:
        """One uncached one-result search, for ``autopilot doctor``; raises the mapped error."""
        now = utcnow()
        payload = self._post("search", {"q": "news", "gl": "us", "hl": "en", "num": 1}, now)
        count = len(payload.get("organic") or [])
        return f"serper ok: /search answered with {count} result(s)"

    def _fetch(
        self, endpoint: str, query: str, gl: str, hl: str, now: datetime
    ) -> list[ResearchItem]:
        body = {"q": query, "gl": gl, "hl": hl, "tbs": self.recency, "num": self.num_results}
        payload = self._post(endpoint, body, now)
        results = payload.get("organic" if endpoint == "search" else "news", [])
        if not isinstance(results, list):
            raise TemporaryError(
                f"Serper /{endpoint} returned malformed JSON: results are not a list"
            )
        items = []
        for result in results:
            if not isinstance(result, dict):
                continue
            title, link = result.get("title"), result.get("link")
            if not isinstance(title, str) or not isinstance(link, str) or not title or not link:
                continue
            source = result.get("source")
            if not isinstance(source, str) or not source:
                source = urlsplit(link).netloc.lower().removeprefix("www.")
            snippet = result.get("snippet")
            items.append(
                ResearchItem(
                    title=title.strip(),
                    link=link.strip(),
                    snippet=snippet.strip() if isinstance(snippet, str) else "",
                    published_at=parse_result_date(result.get("date"), now),
                    source=source,
                )
            )
        return items

    def _post(self, endpoint: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        try:
            response = self._client.post(f"/{endpoint}", json=body)
        except httpx.TimeoutException as exc:
            raise TemporaryError(f"Serper /{endpoint} timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise TemporaryError(f"Serper /{endpoint} unreachable: {exc!r}") from exc
        status = response.status_code
        if status == 429:
            raise RateLimited(
                f"Serper /{endpoint} rate limited (429)", reset_at=_retry_at(response, now)
            )
        if status in (401, 403):
            raise AuthError(
                f"Serper /{endpoint} refused the API key ({status}): {response.text[:200]}"
            )
        if status >= 500:
            raise TemporaryError(f"Serper /{endpoint} failed with {status}")
        if status >= 400:
            raise PermanentError(
                f"Serper /{endpoint} rejected the request ({status}): {response.text[:200]}"
            )
        try:
            payload = response.json()
        except ValueError as exc:
            raise TemporaryError(
                f"Serper /{endpoint} returned malformed JSON ({status}): {response.text[:100]!r}"
            ) from exc
        if not isinstance(payload, dict):
            raise TemporaryError(f"Serper /{endpoint} returned malformed JSON: not an object")
        return payload
