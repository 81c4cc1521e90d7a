"""SerperResearch against a fake Serper on a real socket: parsing, ranking, errors, caching."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.models import Base, ResearchCache
from app.providers.errors import AuthError, PermanentError, RateLimited, TemporaryError
from app.providers.research_cache import DbResearchCache, MemoryResearchCache
from app.providers.serper import (
    SerperResearch,
    cache_key,
    normalise_link,
    parse_result_date,
)
from tests.fakes.serper import DEFAULT_API_KEY, FakeSerper

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeSerper]:
    with FakeSerper() as server:
        yield server


def make_provider(fake: FakeSerper, cache=None, **kwargs) -> SerperResearch:  # type: ignore[no-untyped-def]
    kwargs.setdefault("timeout", 2.0)
    return SerperResearch(
        kwargs.pop("api_key", DEFAULT_API_KEY), fake.url, cache or MemoryResearchCache(), **kwargs
    )


@pytest.fixture
def db_sessions(tmp_path) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


# --- parsing helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3 hours ago", NOW - timedelta(hours=3)),
        ("1 hour ago", NOW - timedelta(hours=1)),
        ("2 days ago", NOW - timedelta(days=2)),
        ("an hour ago", NOW - timedelta(hours=1)),
        ("45 mins ago", NOW - timedelta(minutes=45)),
        ("1 week ago", NOW - timedelta(days=7)),
        ("2 months ago", NOW - timedelta(days=60)),
        ("yesterday", NOW - timedelta(days=1)),
        ("Nov 24, 2026", datetime(2026, 11, 24, tzinfo=UTC)),
        ("24 Nov 2026", datetime(2026, 11, 24, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("sometime last spring", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_result_dates_become_aware_utc_instants_relative_to_now(raw, expected) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_result_date(raw, NOW)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


def test_links_differing_only_by_scheme_www_tracking_or_slash_normalise_equal() -> None:
    a = normalise_link("https://www.Example.org/a/b/?utm_source=x&id=3&utm_campaign=y#top")
    b = normalise_link("http://example.org/a/b?id=3")
    assert a == b
    assert normalise_link("https://example.org/a?id=3") != normalise_link(
        "https://example.org/a?id=4"
    )


def test_cache_key_ignores_case_and_spacing_but_not_locale_or_window() -> None:
    base = cache_key("news", "  Artificial   Intelligence ", "us", "en", "qdr:d")
    assert base == cache_key("news", "artificial intelligence", "us", "en", "qdr:d")
    assert base != cache_key("search", "artificial intelligence", "us", "en", "qdr:d")
    assert base != cache_key("news", "artificial intelligence", "fr", "en", "qdr:d")
    assert base != cache_key("news", "artificial intelligence", "us", "en", "qdr:w")
    assert len(cache_key("news", "x" * 2000, "us", "en", "qdr:d")) <= 500


# --- success ---------------------------------------------------------------------------------


def test_search_sends_serper_requests_and_returns_deduplicated_newest_first(
    fake: FakeSerper,
) -> None:
    provider = make_provider(fake)
    items = provider.search("  AI ", language="EN", country="US", now=NOW)

    bodies = {r.path: r.json() for r in fake.server.requests}
    assert set(bodies) == {"/search", "/news"}
    for body in bodies.values():
        assert body == {"q": "AI", "gl": "us", "hl": "en", "tbs": "qdr:d", "num": 10}
    assert all(r.headers["x-api-key"] == DEFAULT_API_KEY for r in fake.server.requests)

    titles = [item.title for item in items]
    # The open-models story appears on both endpoints: kept once, as its newest (news) version.
    assert titles == [
        "Open-source AI models close the gap",
        "Regulators publish AI transparency rules",
        "Chip makers report record quarter",
        "A field guide to AI agents in production",
        "Startup funding steadies",
    ]
    first = items[0]
    assert first.source == "Example Times"
    assert first.published_at == NOW - timedelta(hours=1)
    assert items[3].source == "guides.example.org"  # organic results are sourced by domain
    assert items[3].published_at is None and items[4].published_at is None


def test_recency_is_a_parameter_and_unknown_windows_are_refused(fake: FakeSerper) -> None:
    make_provider(fake, recency="qdr:w").search("ai", language="en", country="us", now=NOW)
    assert {r.json()["tbs"] for r in fake.server.requests} == {"qdr:w"}
    with pytest.raises(ValueError, match="qdr:d"):
        make_provider(fake, recency="past day")


def test_results_without_title_or_link_are_skipped() -> None:
    with FakeSerper(
        organic=[{"title": "no link"}, {"link": "https://x.example.org"}], news=[]
    ) as fake:
        assert make_provider(fake).search("ai", language="en", country="us", now=NOW) == []


def test_check_makes_one_uncached_call(fake: FakeSerper) -> None:
    provider = make_provider(fake)
    assert "serper ok" in provider.check()
    assert "serper ok" in provider.check()
    assert fake.calls("search") == 2


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("429", RateLimited),
        ("401", AuthError),
        ("403", AuthError),
        ("400", PermanentError),
        ("500", TemporaryError),
        ("503", TemporaryError),
        ("malformed", TemporaryError),
        ("not_object", TemporaryError),
        ("close", TemporaryError),
    ],
)
def test_http_failures_map_to_provider_errors(fake: FakeSerper, mode: str, error: type) -> None:
    fake.fail_next(mode)
    with pytest.raises(error):
        make_provider(fake).search("ai", language="en", country="us", now=NOW)


def test_rate_limit_carries_the_retry_after_instant(fake: FakeSerper) -> None:
    fake.fail_next("429")
    with pytest.raises(RateLimited) as info:
        make_provider(fake).search("ai", language="en", country="us", now=NOW)
    assert info.value.reset_at == NOW + timedelta(seconds=30)


def test_malformed_json_error_says_so(fake: FakeSerper) -> None:
    fake.fail_next("malformed")
    with pytest.raises(TemporaryError, match="malformed JSON"):
        make_provider(fake).search("ai", language="en", country="us", now=NOW)


def test_wrong_api_key_is_an_auth_error(fake: FakeSerper) -> None:
    with pytest.raises(AuthError, match="403"):
        make_provider(fake, api_key="wrong").search("ai", language="en", country="us", now=NOW)
    with pytest.raises(AuthError):
        make_provider(fake, api_key="wrong").check()


def test_a_hanging_server_times_out_as_temporary(fake: FakeSerper) -> None:
    fake.fail_next("hang")
    with pytest.raises(TemporaryError, match="timed out"):
        make_provider(fake, timeout=0.3).search("ai", language="en", country="us", now=NOW)


def test_a_refused_connection_is_temporary() -> None:
    with FakeSerper() as fake:
        url = fake.url
    provider = SerperResearch(DEFAULT_API_KEY, url, MemoryResearchCache(), timeout=1.0)
    with pytest.raises(TemporaryError, match="unreachable"):
        provider.search("ai", language="en", country="us", now=NOW)


def test_failed_calls_are_not_cached_and_a_retry_succeeds(fake: FakeSerper) -> None:
    provider = make_provider(fake)
    fake.fail_next("500")
    with pytest.raises(TemporaryError):
        provider.search("ai", language="en", country="us", now=NOW)
    assert provider.search("ai", language="en", country="us", now=NOW)


# --- cache -----------------------------------------------------------------------------------


def test_memory_cache_serves_the_same_query_once_per_endpoint_per_day(fake: FakeSerper) -> None:
    provider = make_provider(fake)
    first = provider.search("AI", language="en", country="us", now=NOW)
    again = provider.search(" ai ", language="en", country="us", now=NOW + timedelta(hours=5))
    assert again == first
    assert (fake.calls("search"), fake.calls("news")) == (1, 1)

    provider.search("ai", language="en", country="us", now=NOW + timedelta(days=1))
    assert (fake.calls("search"), fake.calls("news")) == (2, 2)
    provider.search("ai", language="fr", country="fr", now=NOW + timedelta(days=1))
    assert (fake.calls("search"), fake.calls("news")) == (3, 3)


def test_two_providers_sharing_a_db_cache_cost_one_call_per_endpoint(
    fake: FakeSerper, db_sessions: sessionmaker[Session]
) -> None:
    one = make_provider(fake, cache=DbResearchCache(db_sessions))
    two = make_provider(fake, cache=DbResearchCache(db_sessions))
    first = one.search("AI", language="en", country="us", now=NOW)
    second = two.search("ai", language="en", country="us", now=NOW)
    assert second == first  # dates survive the JSON round trip as aware instants
    assert second[0].published_at is not None and second[0].published_at.tzinfo is not None
    assert (fake.calls("search"), fake.calls("news")) == (1, 1)
    with db_sessions() as session:
        assert session.query(ResearchCache).count() == 2


def test_db_cache_replaces_yesterdays_entry_for_the_same_key(
    db_sessions: sessionmaker[Session],
) -> None:
    cache = DbResearchCache(db_sessions)
    cache.put("k", "2026-11-25", [{"title": "old"}])
    assert cache.get("k", "2026-11-26") is None
    cache.put("k", "2026-11-26", [{"title": "new"}])
    assert cache.get("k", "2026-11-26") == [{"title": "new"}]
    assert cache.get("k", "2026-11-25") is None
    cache.put("k", "2026-11-26", [{"title": "late duplicate"}])  # same day: first writer kept
    assert cache.get("k", "2026-11-26") == [{"title": "new"}]


def test_db_cache_tolerates_concurrent_inserts_of_the_same_key(
    db_sessions: sessionmaker[Session],
) -> None:
    cache = DbResearchCache(db_sessions)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def put(n: int) -> None:
        try:
            barrier.wait()
            cache.put("shared", "2026-11-26", [{"n": n}])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.get("shared", "2026-11-26") is not None
    with db_sessions() as session:
        assert session.query(ResearchCache).count() == 1


def test_db_cache_swallows_the_integrity_error_of_a_lost_insert_race(
    db_sessions: sessionmaker[Session],
) -> None:
    """Simulate the race deterministically: the row appears between our read and our insert."""
    cache = DbResearchCache(db_sessions)
    real_factory = cache.session_factory

    class RacingSession:
        def __init__(self) -> None:
            self.session = real_factory()

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            self.session.close()

        def scalars(self, *args):  # type: ignore[no-untyped-def]
            result = self.session.scalars(*args)
            with real_factory() as other:  # the competitor commits first
                other.add(ResearchCache(cache_key="race", day="2026-11-26", payload=[{"w": 1}]))
                other.commit()
            return result

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(self.session, name)

    cache.session_factory = RacingSession  # type: ignore[assignment]
    cache.put("race", "2026-11-26", [{"w": 2}])
    cache.session_factory = real_factory
    assert cache.get("race", "2026-11-26") == [{"w": 1}]
