"""Metrics collection on PostgreSQL, with in-test publishers that record every call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.db import make_session_factory
from app.models import (
    AccountStatus,
    MetricSnapshot,
    Notification,
    PlatformAccount,
    Post,
    PostStatus,
)
from app.providers.base import AccountCredentials, PostMetrics, Publisher, PublishResult, TokenSet
from app.providers.errors import AuthError, ProviderError, RateLimited
from app.providers.sandbox import SandboxPublisher, simulated_metrics
from app.runtime import Runtime
from app.workflows.metrics import (
    POSTS_PER_METRICS_CALL,
    collect_metrics_for_user,
    snapshot_age,
    users_with_metrics_due,
)
from tests import factories
from tests.factories import make_user

#: What the recording publisher reports for every post: 50 interactions on 1000 impressions.
FIGURES = PostMetrics(impressions=1000, likes=30, shares=12, comments=8)


class RecordingPublisher:
    """Returns fixed figures for every id asked, records each call, or raises ``error``."""

    name = "recording"
    offline = False

    def __init__(self, platform: str, *, error: ProviderError | None = None,
                 figures: PostMetrics = FIGURES,
                 skip: set[str] | None = None, during_call: Callable[[], None] | None = None) -> None:
        self.platform = platform
        self.error = error
        self.figures = figures
        self.skip = skip or set()
        self.during_call = during_call
        self.calls: list[list[str]] = []

    def fetch_metrics(self, account: AccountCredentials, external_ids: list[str]) -> dict[str, PostMetrics]:
        assert account.platform == self.platform and account.access_token == "tok"
        self.calls.append(list(external_ids))
        if self.during_call is not None:
            self.during_call()
        if self.error is not None:
            raise self.error
        return {i: self.figures for i in external_ids if i not in self.skip}

    def publish(self, account: AccountCredentials, text: str, ref: object = None) -> PublishResult:
        raise AssertionError("metrics never publish")

    def find_published(self, account: AccountCredentials, text: str, since: datetime,
                       ref: object = None) -> PublishResult | None:
        raise AssertionError("metrics never reconcile")

    def refresh(self, account: AccountCredentials) -> TokenSet:
        raise AssertionError("metrics never refresh tokens")


def make_runtime(settings: Settings, sessions: sessionmaker[Session], vault: TokenVault, now: datetime,
                 **publishers: Publisher) -> Runtime:
    return factories.make_runtime(settings, sessions, vault, clock=lambda: now, publishers=publishers)


def add_posts(sessions: sessionmaker[Session], user_id: int, published_at: list[datetime], *,
              platform: str = "twitter", status: str = PostStatus.PUBLISHED) -> list[int]:
    with sessions() as session, session.begin():
        posts = [Post(user_id=user_id, platform=platform, text=f"post {i}", status=status,
                      scheduled_at=at, published_at=at if status == PostStatus.PUBLISHED else None,
                      external_id=f"{platform}-{user_id}-{i}-{at:%d%H%M}" if status == PostStatus.PUBLISHED else None)
                 for i, at in enumerate(published_at)]
        session.add_all(posts)
        session.flush()
        return [p.id for p in posts]


def snapshots(sessions: sessionmaker[Session]) -> list[MetricSnapshot]:
    with sessions() as session:
        return list(session.scalars(select(MetricSnapshot).order_by(MetricSnapshot.post_id, MetricSnapshot.age)))


# -- which posts are due -------------------------------------------------------------------


@pytest.mark.parametrize(("age", "expected"), [
    (timedelta(0), "24h"), (timedelta(hours=23, minutes=59), "24h"), (timedelta(hours=24), None),
    (timedelta(days=3), None), (timedelta(days=7) - timedelta(seconds=1), None), (timedelta(days=7), "7d"),
    (timedelta(days=7, hours=23), "7d"), (timedelta(days=8), None), (timedelta(seconds=-1), None),
])
def test_snapshot_age_windows(age: timedelta, expected: str | None, now: datetime) -> None:
    assert snapshot_age(now - age, now) == expected


def test_users_with_metrics_due_lists_each_user_once(sessions, vault, now) -> None:  # type: ignore[no-untyped-def]
    fresh = make_user(sessions, vault, "fresh@example.com")
    week_old = make_user(sessions, vault, "week@example.com")
    idle = make_user(sessions, vault, "idle@example.com")
    done = make_user(sessions, vault, "done@example.com")
    add_posts(sessions, fresh, [now - timedelta(hours=2), now - timedelta(hours=5)])
    add_posts(sessions, week_old, [now - timedelta(days=7, hours=6)])
    add_posts(sessions, idle, [now - timedelta(days=3), now - timedelta(days=9)])
    add_posts(sessions, idle, [now - timedelta(hours=1)], status=PostStatus.FAILED)
    [measured] = add_posts(sessions, done, [now - timedelta(hours=3)])
    with sessions() as session, session.begin():
        session.add(MetricSnapshot(post_id=measured, age="24h"))

    with sessions() as session:
        assert users_with_metrics_due(session, now) == [fresh, week_old]


# -- collection ----------------------------------------------------------------------------


def test_250_posts_are_fetched_in_three_calls_of_at_most_100_ids(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    add_posts(sessions, user, [now - timedelta(minutes=5 * i + 1) for i in range(250)])
    twitter = RecordingPublisher("twitter")
    runtime = make_runtime(settings, sessions, vault, now, twitter=twitter, linkedin=RecordingPublisher("linkedin"))

    counts = collect_metrics_for_user(runtime, user, now)

    assert [len(call) for call in twitter.calls] == [100, 100, 50]
    assert all(len(call) <= POSTS_PER_METRICS_CALL for call in twitter.calls)
    asked = [i for call in twitter.calls for i in call]
    assert len(asked) == len(set(asked)) == 250
    assert counts == {"due": 250, "calls": 3, "snapshots": 250, "by_age": {"24h": 250, "7d": 0},
                      "missing": 0, "skipped": {}, "errors": {}}
    assert len(snapshots(sessions)) == 250


def test_24h_and_7d_snapshots_update_the_post(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    [today] = add_posts(sessions, user, [now - timedelta(hours=3)])
    [last_week] = add_posts(sessions, user, [now - timedelta(days=7, hours=3)], platform="linkedin")
    [between] = add_posts(sessions, user, [now - timedelta(days=3)])
    with sessions() as session, session.begin():
        session.add(MetricSnapshot(post_id=last_week, age="24h", impressions=10, likes=1))
    runtime = make_runtime(settings, sessions, vault, now, twitter=RecordingPublisher("twitter"),
                           linkedin=RecordingPublisher("linkedin"))

    counts = collect_metrics_for_user(runtime, user, now)

    assert counts["by_age"] == {"24h": 1, "7d": 1}
    assert [(s.post_id, s.age, s.simulated) for s in snapshots(sessions)] == [
        (today, "24h", False), (last_week, "24h", False), (last_week, "7d", False)]
    with sessions() as session:
        for post_id in (today, last_week):
            post = session.get(Post, post_id)
            assert post is not None
            assert (post.impressions, post.likes, post.shares, post.comments) == (1000, 30, 12, 8)
            assert post.engagement_rate == pytest.approx(50 / 1000)  # interactions / impressions
            assert post.metrics_updated_at == now
        untouched = session.get(Post, between)
        assert untouched is not None and untouched.impressions is None and untouched.metrics_updated_at is None
    fresh = next(s for s in snapshots(sessions) if s.post_id == today)
    assert (fresh.impressions, fresh.engagement_rate, fresh.taken_at) == (1000, pytest.approx(0.05), now)


def test_a_platform_without_impressions_gives_its_posts_interactions_and_no_rate(  # type: ignore[no-untyped-def]
        sessions, vault, settings, now) -> None:
    """Bluesky reports likes, reposts and replies but never impressions: its post keeps them, and
    no engagement rate (a stored 0 % would say nobody cared)."""
    user = make_user(sessions, vault, connect=("bluesky",))
    [post_id] = add_posts(sessions, user, [now - timedelta(hours=3)], platform="bluesky")
    figures = PostMetrics(impressions=0, likes=30, shares=12, comments=8)
    runtime = make_runtime(settings, sessions, vault, now, bluesky=RecordingPublisher("bluesky", figures=figures))

    assert collect_metrics_for_user(runtime, user, now)["by_age"] == {"24h": 1, "7d": 0}
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post is not None
        assert (post.likes, post.shares, post.comments, post.metrics_updated_at) == (30, 12, 8, now)
        assert post.engagement_rate is None


def test_rerun_fetches_nothing_and_duplicates_nothing(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    add_posts(sessions, user, [now - timedelta(hours=h) for h in (1, 2, 3)])
    add_posts(sessions, user, [now - timedelta(days=7, hours=1)], platform="linkedin")
    twitter, linkedin = RecordingPublisher("twitter"), RecordingPublisher("linkedin")
    runtime = make_runtime(settings, sessions, vault, now, twitter=twitter, linkedin=linkedin)

    first = collect_metrics_for_user(runtime, user, now)
    second = collect_metrics_for_user(runtime, user, now)

    assert first["snapshots"] == 4
    assert second == {"due": 0, "calls": 0, "snapshots": 0, "by_age": {"24h": 0, "7d": 0},
                      "missing": 0, "skipped": {}, "errors": {}}
    assert (len(twitter.calls), len(linkedin.calls)) == (1, 1)
    assert len(snapshots(sessions)) == 4
    with sessions() as session:
        assert users_with_metrics_due(session, now) == []


def test_snapshot_stored_by_a_racing_run_is_kept_not_duplicated(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    first, second = add_posts(sessions, user, [now - timedelta(hours=1), now - timedelta(hours=2)])

    def racing_run_writes_first_snapshot() -> None:
        with sessions() as session, session.begin():
            session.add(MetricSnapshot(post_id=first, age="24h", impressions=7, likes=1))

    twitter = RecordingPublisher("twitter", during_call=racing_run_writes_first_snapshot)
    runtime = make_runtime(settings, sessions, vault, now, twitter=twitter, linkedin=RecordingPublisher("linkedin"))

    counts = collect_metrics_for_user(runtime, user, now)

    assert counts["snapshots"] == 1
    assert [(s.post_id, s.impressions) for s in snapshots(sessions)] == [(first, 7), (second, 1000)]


def test_one_platform_failing_does_not_stop_the_other(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    tweets = add_posts(sessions, user, [now - timedelta(hours=1 + i) for i in range(150)])
    [article] = add_posts(sessions, user, [now - timedelta(hours=2)], platform="linkedin")
    twitter = RecordingPublisher("twitter", error=RateLimited("too many requests"))
    runtime = make_runtime(settings, sessions, vault, now, twitter=twitter, linkedin=RecordingPublisher("linkedin"))

    counts = collect_metrics_for_user(runtime, user, now)

    assert counts["errors"] == {"twitter": "RateLimited: too many requests"}
    assert len(twitter.calls) == 1  # the next batch would meet the same refusal
    assert [s.post_id for s in snapshots(sessions)] == [article]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Post).where(
            Post.id.in_(tweets), Post.metrics_updated_at.is_not(None))) == 0
        # The failed posts are still due: the next run tries them again.
        assert users_with_metrics_due(session, now) == [user]


def test_auth_error_changes_nothing(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault, connect=("twitter",))
    [tweet] = add_posts(sessions, user, [now - timedelta(hours=1)])
    runtime = make_runtime(settings, sessions, vault, now, twitter=RecordingPublisher("twitter", error=AuthError("401")))

    counts = collect_metrics_for_user(runtime, user, now)

    assert counts["errors"] == {"twitter": "AuthError: 401"}
    assert snapshots(sessions) == []
    with sessions() as session:
        account = session.scalar(select(PlatformAccount).where(PlatformAccount.user_id == user))
        assert account is not None and account.status == AccountStatus.ACTIVE
        post = session.get(Post, tweet)
        assert post is not None and post.status == PostStatus.PUBLISHED


def test_account_needing_reauthorisation_is_skipped_without_a_call(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    add_posts(sessions, user, [now - timedelta(hours=1)])
    add_posts(sessions, user, [now - timedelta(hours=1)], platform="linkedin")
    with sessions() as session, session.begin():
        account = session.scalar(select(PlatformAccount).where(PlatformAccount.platform == "linkedin"))
        assert account is not None
        account.status = AccountStatus.NEEDS_REAUTH
    linkedin = RecordingPublisher("linkedin")
    runtime = make_runtime(settings, sessions, vault, now, twitter=RecordingPublisher("twitter"), linkedin=linkedin)

    counts = collect_metrics_for_user(runtime, user, now)

    assert counts["skipped"] == {"linkedin": "account needs_reauth"}
    assert counts["snapshots"] == 1 and linkedin.calls == []


def test_posts_the_platform_no_longer_has_are_counted_missing(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    kept, deleted = add_posts(sessions, user, [now - timedelta(hours=1), now - timedelta(hours=2)])
    with sessions() as session:
        gone = session.get(Post, deleted)
        assert gone is not None and gone.external_id is not None
        skip = {gone.external_id}
    runtime = make_runtime(settings, sessions, vault, now, twitter=RecordingPublisher("twitter", skip=skip),
                           linkedin=RecordingPublisher("linkedin"))

    counts = collect_metrics_for_user(runtime, user, now)

    assert (counts["snapshots"], counts["missing"]) == (1, 1)
    assert [s.post_id for s in snapshots(sessions)] == [kept]


def test_sandbox_figures_are_stored_as_simulated(sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault, connect=("twitter",))
    [tweet] = add_posts(sessions, user, [now - timedelta(hours=4)])
    runtime = make_runtime(settings, sessions, vault, now, twitter=SandboxPublisher("twitter"))

    collect_metrics_for_user(runtime, user, now)

    [snapshot] = snapshots(sessions)
    with sessions() as session:
        post = session.get(Post, tweet)
        assert post is not None and post.external_id is not None
        expected = simulated_metrics(post.external_id)
        assert snapshot.simulated is True
        assert (snapshot.impressions, snapshot.likes, snapshot.shares, snapshot.comments) == (
            expected.impressions, expected.likes, expected.shares, expected.comments)
        assert post.engagement_rate == pytest.approx(expected.interactions / expected.impressions)


def test_collection_is_idempotent_on_sqlite_too(engine, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    # The embedded database runs the same upsert path as PostgreSQL (ON CONFLICT DO NOTHING).
    sessions = make_session_factory(engine)
    user = make_user(sessions, vault, connect=("twitter",))
    add_posts(sessions, user, [now - timedelta(hours=1), now - timedelta(days=7, hours=1)])
    runtime = make_runtime(settings, sessions, vault, now, twitter=SandboxPublisher("twitter"))

    assert collect_metrics_for_user(runtime, user, now)["by_age"] == {"24h": 1, "7d": 1}
    assert collect_metrics_for_user(runtime, user, now)["snapshots"] == 0
    assert [(s.age, s.simulated) for s in snapshots(sessions)] == [("24h", True), ("7d", True)]


def test_an_account_whose_token_cannot_be_decrypted_is_flagged_and_the_others_are_measured(
        sessions, vault, settings, now) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault)
    add_posts(sessions, user, [now - timedelta(hours=3)])
    [lost] = add_posts(sessions, user, [now - timedelta(hours=2)], platform="linkedin")
    with sessions() as session, session.begin():
        account = session.scalars(select(PlatformAccount).where(PlatformAccount.platform == "linkedin")).one()
        # Encrypted under a key this deployment no longer has (a key rotated away too early).
        account.access_token_encrypted = TokenVault([generate_key()]).encrypt("tok")
    twitter, linkedin = RecordingPublisher("twitter"), RecordingPublisher("linkedin")
    runtime = make_runtime(settings, sessions, vault, now, twitter=twitter, linkedin=linkedin)

    counts = collect_metrics_for_user(runtime, user, now)

    assert counts["snapshots"] == 1 and len(twitter.calls) == 1 and linkedin.calls == []
    assert "cannot be decrypted" in counts["skipped"]["linkedin"]
    assert lost not in {s.post_id for s in snapshots(sessions)}
    with sessions() as session:
        statuses = dict(session.execute(select(PlatformAccount.platform, PlatformAccount.status)).all())
        assert statuses == {"twitter": AccountStatus.ACTIVE, "linkedin": AccountStatus.NEEDS_REAUTH}
        notices = session.scalars(select(Notification.subject).where(Notification.user_id == user)).all()
        assert notices == ["Reconnect your LinkedIn account"]
