"""The dashboard's figures equal the same figures computed directly in SQL, on a seeded history.

Two users with two years of daily posts, in New York (the history crosses four DST changes, one
of them inside the 90-day period), the second user's numbers different from the first's: every
figure is checked against a query written independently in SQL, and none of the second user's
posts may move any of the first user's figures. Ada also posts on Bluesky and Mastodon, which
report likes, reposts and replies but no impressions: their posts count in the interactions,
never in a rate, and are ranked apart by interactions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from app.crypto import TokenVault
from app.models import PlatformAccount, Post, ProviderHold
from app.performance import PERIODS_DAYS, Dashboard, dashboard
from app.platforms import published_post_url
from app.providers.base import TokenSet
from app.statuses import AccountStatus, PostStatus
from app.users import connect_account
from tests.factories import make_user
from tests.history import LOCAL_HOURS, ZONE, seed_history

#: Thursday 26 November 2026, 15:00 UTC: the 90-day period includes 1 November's DST change.
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


@pytest.fixture
def users(sessions: sessionmaker[Session], vault: TokenVault) -> dict[str, int]:
    """Ada (X and LinkedIn) and Bob (X), both in New York, without posts."""
    settings = {"timezone": ZONE, "preferred_platforms": ["twitter", "linkedin"],
                "posting_times": {"twitter": ["09:00"], "linkedin": ["17:00"]}}
    ada = make_user(sessions, vault, "ada@example.com", settings=settings, connect=("twitter", "linkedin"))
    bob = make_user(sessions, vault, "bob@example.com", settings=settings, connect=("twitter",))
    return {"ada": ada, "bob": bob}


@pytest.fixture
def history(sessions: sessionmaker[Session], users: dict[str, int]) -> dict[str, int]:
    """Both users with two years of daily posts, Bob's numbers drawn differently from Ada's; Ada on
    the four platforms, Bob on X and LinkedIn."""
    seed_history(sessions, users["ada"], NOW, seed=1, platforms=ALL_FOUR)
    seed_history(sessions, users["bob"], NOW, seed=2)
    return users


ALL_FOUR = ("twitter", "linkedin", "bluesky", "mastodon")
#: Written out here, independently of the registry: the platforms that report impressions.
MEASURED = "status = 'published' AND metrics_updated_at IS NOT NULL"
RATED = f"{MEASURED} AND platform IN ('twitter', 'linkedin') AND impressions > 0"
UNRATED_PLATFORM = f"{MEASURED} AND platform IN ('bluesky', 'mastodon')"
INTERACTIONS = "(likes + shares + comments)"
RATE = f"{INTERACTIONS}::float8 / impressions"


def sql_period(session: Session, user_id: int, since: datetime, until: datetime) -> dict[str, object]:
    row = session.execute(text(f"""
        SELECT count(*) FILTER (WHERE status = 'published') AS published,
               count(*) FILTER (WHERE status = 'published'
                                AND published_at - scheduled_at <= interval '60 seconds') AS on_time,
               count(*) FILTER (WHERE status = 'needs_review') AS reviewed,
               coalesce(sum(impressions) FILTER (WHERE {RATED}), 0) AS impressions,
               avg({RATE}) FILTER (WHERE {RATED}) AS engagement_rate,
               coalesce(sum({INTERACTIONS}) FILTER (WHERE {MEASURED}), 0) AS interactions,
               avg({INTERACTIONS}::float8) FILTER (WHERE {MEASURED}) AS interactions_per_post
        FROM posts WHERE user_id = :user AND scheduled_at >= :since AND scheduled_at < :until
    """), {"user": user_id, "since": since, "until": until}).mappings().one()
    return dict(row)


def figures(board: Dashboard, attribute: str) -> dict[str, object]:
    return {f.name: getattr(f, attribute) for f in board.figures}


@pytest.mark.parametrize("days", PERIODS_DAYS)
def test_period_figures_equal_sql(sessions: sessionmaker[Session], history: dict[str, int], days: int) -> None:
    with sessions() as session:
        board = dashboard(session, history["ada"], NOW, days)
        current = sql_period(session, history["ada"], NOW - timedelta(days=days), NOW)
        previous = sql_period(session, history["ada"], NOW - timedelta(days=2 * days), NOW - timedelta(days=days))
    assert current["published"] > 0 and current["reviewed"] > 0 and current["on_time"] < current["published"]
    approx = ("engagement_rate", "interactions_per_post")
    assert figures(board, "value") == {**current, **{k: pytest.approx(current[k]) for k in approx}}
    assert figures(board, "previous") == {**previous, **{k: pytest.approx(previous[k]) for k in approx}}
    with sessions() as session:
        # Bluesky and Mastodon count: their interactions are in the figure, their 0 impressions are not a rate.
        unrated = session.scalar(text(f"""
            SELECT sum({INTERACTIONS}) FROM posts WHERE user_id = :user AND {UNRATED_PLATFORM}
              AND scheduled_at >= :since AND scheduled_at < :now"""),
            {"user": history["ada"], "since": NOW - timedelta(days=days), "now": NOW})
    assert unrated > 0 and figures(board, "value")["interactions"] > unrated
    assert all(f.unreported == "" for f in board.figures)
    for figure in board.figures:
        assert figure.counts.since == NOW - timedelta(days=days) and figure.counts.until == NOW


def test_weekly_per_platform_equals_sql(sessions: sessionmaker[Session], history: dict[str, int]) -> None:
    with sessions() as session:
        board = dashboard(session, history["ada"], NOW, 30)
        rows = session.execute(text(f"""
            SELECT date_trunc('week', scheduled_at AT TIME ZONE :zone)::date AS week, platform,
                   count(*) AS posts, coalesce(sum(impressions) FILTER (WHERE {RATED}), 0) AS impressions,
                   avg({RATE}) FILTER (WHERE {RATED}) AS rate, avg({INTERACTIONS}::float8) AS per_post
            FROM posts WHERE user_id = :user AND {MEASURED} AND scheduled_at < :now
              AND date_trunc('week', scheduled_at AT TIME ZONE :zone)::date >= :first
            GROUP BY 1, 2 ORDER BY 2, 1
        """), {"user": history["ada"], "zone": ZONE, "now": NOW, "first": board.week_starts[0]}).all()
    assert len(board.week_starts) == 12 and board.week_starts[-1] == date(2026, 11, 23)
    drawn = sorted(((p.week_start, p.platform, p.stats.posts, p.stats.impressions, p.stats.engagement_rate,
                     p.stats.interactions_per_post) for p in board.weeks if p.stats.posts),
                   key=lambda d: (d[1], d[0]))
    assert len(drawn) == 12 * 4
    assert [d[:4] for d in drawn] == [tuple(r[:4]) for r in rows]
    # No rate where no impressions are reported (None, never 0.0); interactions per post everywhere.
    assert [d[4] for d in drawn] == [pytest.approx(r.rate) if r.rate is not None else None for r in rows]
    assert {d[1] for d in drawn if d[4] is None} == {"bluesky", "mastodon"}
    assert [d[5] for d in drawn] == pytest.approx([r.per_post for r in rows])


@pytest.mark.parametrize("days", [30, 90])
def test_heatmap_equals_sql_in_local_time(sessions: sessionmaker[Session], history: dict[str, int], days: int) -> None:
    with sessions() as session:
        board = dashboard(session, history["ada"], NOW, days)
        rows = session.execute(text(f"""
            SELECT extract(isodow FROM coalesce(published_at, scheduled_at) AT TIME ZONE :zone)::int - 1 AS day,
                   extract(hour FROM coalesce(published_at, scheduled_at) AT TIME ZONE :zone)::int AS hour,
                   count(*) FILTER (WHERE {RATED}) AS posts, avg({RATE}) FILTER (WHERE {RATED}) AS rate
            FROM posts WHERE user_id = :user AND {MEASURED} AND scheduled_at >= :since AND scheduled_at < :now
            GROUP BY 1, 2 ORDER BY 1, 2
        """), {"user": history["ada"], "zone": ZONE, "since": NOW - timedelta(days=days), "now": NOW}).all()
    # Local hours only: a UTC grid would show 13:00-14:00 and 01:00-02:00 across the DST change.
    assert {hour for _, hour in board.heatmap} <= set(LOCAL_HOURS)
    assert list(board.heatmap) == [(r.day, r.hour) for r in rows]
    # A cell's rate rests on its rated posts only: Bluesky's and Mastodon's 0 impressions pull no rate down.
    assert [s.rated_posts for s in board.heatmap.values()] == [r.posts for r in rows]
    assert [s.engagement_rate for s in board.heatmap.values()] == [
        pytest.approx(r.rate) if r.rate is not None else None for r in rows]


def test_top_bottom_and_next_posts_equal_sql(sessions: sessionmaker[Session], history: dict[str, int]) -> None:
    with sessions() as session:
        board = dashboard(session, history["ada"], NOW, 7)
        window = {"user": history["ada"], "since": NOW - timedelta(days=7), "now": NOW}
        ranked = session.execute(text(f"""
            SELECT id, external_id, platform FROM posts
            WHERE user_id = :user AND {RATED} AND scheduled_at >= :since AND scheduled_at < :now
            ORDER BY {RATE} DESC, published_at, id
        """), window).all()
        most = session.scalars(text(f"""
            SELECT id FROM posts WHERE user_id = :user AND {UNRATED_PLATFORM}
              AND scheduled_at >= :since AND scheduled_at < :now
            ORDER BY {INTERACTIONS} DESC, published_at, id LIMIT 3
        """), window).all()
        fewest = session.scalars(text(f"""
            SELECT id FROM posts WHERE user_id = :user AND {UNRATED_PLATFORM}
              AND scheduled_at >= :since AND scheduled_at < :now AND NOT id = ANY(:most)
            ORDER BY {INTERACTIONS}, published_at, id LIMIT 3
        """), {**window, "most": list(most)}).all()
        upcoming = session.scalars(text("""
            SELECT id FROM posts WHERE user_id = :user AND status = 'scheduled' AND scheduled_at >= :now
            ORDER BY scheduled_at, id LIMIT 5
        """), {"user": history["ada"], "now": NOW}).all()
    assert len(ranked) >= 6
    assert [p.post_id for p in board.top] == [r.id for r in ranked[:3]]
    assert [p.post_id for p in board.bottom] == [r.id for r in ranked[::-1][:3]]
    # Bluesky's and Mastodon's posts are never ranked by a rate they cannot have: by interactions, apart.
    assert {p.platform for p in board.top + board.bottom} <= {"twitter", "linkedin"}
    assert len(most) == len(fewest) == 3
    assert [p.post_id for p in board.top_by_interactions] == list(most)
    assert [p.post_id for p in board.bottom_by_interactions] == list(fewest)
    assert all(p.engagement_rate is None for p in board.top_by_interactions + board.bottom_by_interactions)
    assert board.top[0].url == published_post_url(ranked[0].platform, ranked[0].external_id)
    assert board.top[0].url is not None and board.top[0].url.startswith("https://")
    assert [p.post_id for p in board.next_posts] == list(upcoming) and len(upcoming) == 5


def test_a_second_users_data_never_appears(sessions: sessionmaker[Session], history: dict[str, int]) -> None:
    with sessions() as session:
        before = {days: dashboard(session, history["ada"], NOW, days) for days in PERIODS_DAYS}
    # Bob's posts all change, and his account is refused: none of Ada's figures may move.
    with sessions.begin() as session:
        session.execute(update(Post).where(Post.user_id == history["bob"])
                        .values(impressions=1_000_000, likes=900_000, status=PostStatus.PUBLISHED))
        session.execute(update(PlatformAccount).where(PlatformAccount.user_id == history["bob"])
                        .values(status=AccountStatus.NEEDS_REAUTH))
    with sessions() as session:
        for days, board in before.items():
            again = dashboard(session, history["ada"], NOW, days)
            assert again.figures == board.figures and again.weeks == board.weeks
            assert again.heatmap == board.heatmap and again.top == board.top and again.bottom == board.bottom
            assert again.top_by_interactions == board.top_by_interactions
            assert again.bottom_by_interactions == board.bottom_by_interactions
            assert again.next_posts == board.next_posts and again.accounts == board.accounts
        ids = {p.post_id for p in again.top + again.bottom + again.next_posts}  # type: ignore[operator]
        owners = set(session.scalars(text("SELECT DISTINCT user_id FROM posts WHERE id = ANY(:ids)"),
                                     {"ids": list(ids)}))
    assert owners == {history["ada"]}


def test_accounts_and_pauses(sessions: sessionmaker[Session], users: dict[str, int]) -> None:
    history = users
    with sessions.begin() as session:
        session.execute(update(PlatformAccount)
                        .where(PlatformAccount.user_id == history["ada"], PlatformAccount.platform == "linkedin")
                        .values(status=AccountStatus.NEEDS_REAUTH))
        session.execute(update(PlatformAccount)
                        .where(PlatformAccount.user_id == history["ada"], PlatformAccount.platform == "twitter")
                        .values(refresh_expires_at=NOW + timedelta(days=3)))
        session.add_all([
            ProviderHold(provider="linkedin", kind="linkedin_version_sunset", detail="sunset",
                         until=NOW + timedelta(hours=2)),
            ProviderHold(provider="openai", kind="openai_insufficient_quota", detail="quota",
                         until=NOW + timedelta(hours=1)),
            ProviderHold(provider="x", kind="x_usage_capped", detail="cap", until=NOW - timedelta(minutes=1)),
        ])
    with sessions() as session:
        ada, bob = (dashboard(session, history[name], NOW, 7) for name in ("ada", "bob"))
    assert [(a.platform, a.state) for a in ada.accounts] == [("linkedin", "needs_reauth"), ("twitter", "expires")]
    assert [(a.platform, a.state) for a in bob.accounts] == [("twitter", "connected")]
    # The lapsed X pause is over; Bob has no LinkedIn account, so LinkedIn's pause is not his.
    assert [p.provider for p in ada.pauses] == ["linkedin", "openai"]
    assert [p.provider for p in bob.pauses] == ["openai"]


def test_unknown_period_is_refused(sessions: sessionmaker[Session], users: dict[str, int]) -> None:
    history = users
    with sessions() as session, pytest.raises(ValueError, match="7, 30, 90"):
        dashboard(session, history["ada"], NOW, 14)


def test_a_mastodon_post_links_to_its_own_instance(sessions: sessionmaker[Session], history: dict[str, int],
                                                   vault: TokenVault) -> None:
    """A status lives on the account's instance: the ranked lists link there (the account is
    read with the dashboard's accounts, not once per post)."""
    with sessions.begin() as session:
        connect_account(session, vault, "ada@example.com", "mastodon", TokenSet("tok", None, None),
                        handle="@ada@social.example", external_id="42", service_url="https://social.example")
    with sessions.begin() as session:
        best = session.scalars(text(f"""
            SELECT id FROM posts WHERE user_id = :user AND platform = 'mastodon' AND {MEASURED}
              AND scheduled_at >= :since ORDER BY id DESC LIMIT 1"""),
            {"user": history["ada"], "since": NOW - timedelta(days=7)}).one()
        session.execute(update(Post).where(Post.id == best).values(likes=10_000_000, external_id="1099"))
    with sessions() as session:
        board = dashboard(session, history["ada"], NOW, 7)
    assert board.top_by_interactions[0].post_id == best
    assert board.top_by_interactions[0].url == "https://social.example/@ada/1099"
