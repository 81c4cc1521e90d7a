"""The publishing workflow facing X's caps and LinkedIn's throttle and sunset versions.

The real X and LinkedIn clients talk to the socket fakes, which replay recorded or documented
responses (tests/fixtures/wire, each with its ``source``): the workflow must wait for the right
reset, pause a provider that only the operator can fix, tell the operator once, and send posts
to review once they would be published too late. Every process here shares the fixed ``now``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import SettableClock
from app.config import Settings
from app.crypto import TokenVault
from app.models import Notification, Post, PostStatus, ProviderHold, ReviewReason
from app.providers.base import TokenSet
from app.providers.linkedin import LinkedInPublisher, next_midnight_utc
from app.providers.registry import Providers
from app.providers.x import XPublisher
from app.runtime import Runtime
from app.users import connect_account, create_user
from app.workflows.publish import publish_post
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX
from tests.wire import load, replay_next

GRACE = 60


@pytest.fixture
def x() -> Iterator[FakeX]:
    with FakeX() as server:
        yield server


@pytest.fixture
def linkedin() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as server:
        yield server


@pytest.fixture
def runtime(sessions: sessionmaker[Session], vault: TokenVault, clock: SettableClock,
            x: FakeX, linkedin: FakeLinkedIn) -> Iterator[Runtime]:
    settings = Settings(database_url="sqlite://", stale_grace_minutes=GRACE)
    timeout = httpx.Timeout(2.0, connect=2.0)
    publishers = {
        "twitter": XPublisher(x.base_url, "x-client-id", timeout=timeout, clock=clock),
        "linkedin": LinkedInPublisher(linkedin.base_url, linkedin.base_url, "202610", "li-id",
                                      "li-secret", timeout=timeout, clock=clock),
    }
    providers = Providers(research=None, generation=None, publishers=publishers)  # type: ignore[arg-type]
    yield Runtime(settings=settings, session_factory=sessions, providers=providers, vault=vault,
                  clock=clock)
    for publisher in publishers.values():
        publisher.close()


@pytest.fixture
def user_id(sessions: sessionmaker[Session], vault: TokenVault, now: datetime, x: FakeX,
            linkedin: FakeLinkedIn) -> int:
    with sessions.begin() as session:
        user = create_user(session, "alice@example.com", {"timezone": "UTC"})
        connect_account(session, vault, "alice@example.com", "twitter",
                        TokenSet(x.access_token, x.refresh_token, expires_at=now + timedelta(hours=2)),
                        external_id=x.user_id)
        connect_account(session, vault, "alice@example.com", "linkedin",
                        TokenSet(linkedin.access_token, linkedin.refresh_token,
                                 expires_at=now + timedelta(days=30)),
                        external_id=linkedin.member_urn)
        return user.id


def queued(sessions: sessionmaker[Session], user_id: int, platform: str, at: datetime,
           token: str = "t0", text: str = "Shipping beats perfect. #AI") -> int:
    with sessions.begin() as session:
        post = Post(user_id=user_id, platform=platform, text=text, status=PostStatus.QUEUED,
                    scheduled_at=at, claim_token=token, queued_at=at)
        session.add(post)
        session.flush()
        return post.id


def load_post(sessions: sessionmaker[Session], post_id: int) -> Post:
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post


def operator_notifications(sessions: sessionmaker[Session]) -> list[Notification]:
    with sessions() as session:
        return list(session.scalars(select(Notification).where(Notification.user_id.is_(None))))


def creates(fake: FakeX | FakeLinkedIn, path: str) -> int:
    return len(fake.requests_to(path, "POST"))


# -- X --------------------------------------------------------------------------------------


def test_x_app_24h_cap_waits_for_its_reset_not_the_window(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, x: FakeX, clock: SettableClock) -> None:
    recorded = load("x/create_429_app_24h")
    window = datetime.fromtimestamp(int(recorded["headers"]["x-rate-limit-reset"]), tz=UTC)
    daily = datetime.fromtimestamp(recorded["expect_reset_epoch"], tz=UTC)
    # The post is scheduled so that the window's reset is within the grace and the daily one not.
    clock.now = window - timedelta(minutes=5)
    replay_next(x, "x/create_429_app_24h", method="POST", path="/2/tweets")
    post_id = queued(sessions, user_id, "twitter", clock())

    outcome = publish_post(runtime, post_id, "t0", clock())

    assert daily - clock() > timedelta(minutes=GRACE) > window - clock()
    assert outcome.kind == "review"  # not retried at the window's reset, where it fails again
    post = load_post(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.STALE)
    assert daily.isoformat() in (post.last_error or "")


def test_x_user_24h_cap_within_the_grace_retries_at_the_daily_reset(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, x: FakeX, clock: SettableClock) -> None:
    daily = datetime.fromtimestamp(load("x/create_429_user_24h")["expect_reset_epoch"], tz=UTC)
    clock.now = daily - timedelta(minutes=30)
    replay_next(x, "x/create_429_user_24h", method="POST", path="/2/tweets")
    post_id = queued(sessions, user_id, "twitter", clock())

    outcome = publish_post(runtime, post_id, "t0", clock())

    assert (outcome.kind, outcome.retry_at) == ("retry", daily)
    assert outcome.claim_token is not None
    clock.now = daily
    assert publish_post(runtime, post_id, outcome.claim_token, daily).kind == "published"
    assert [p.text for p in x.posts] == ["Shipping beats perfect. #AI"]


@pytest.mark.parametrize(("fixture", "kind"), [("x/create_429_usage_capped", "x_usage_capped"),
                                                ("x/create_402_credits", "x_payment_required")])
def test_an_x_operator_problem_pauses_x_notifies_the_operator_once_and_reviews_when_stale(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, x: FakeX,
        linkedin: FakeLinkedIn, now: datetime, fixture: str, kind: str) -> None:
    replay_next(x, fixture, method="POST", path="/2/tweets")
    # Ten minutes late already: the hour-long pause ends past the 60-minute grace.
    first = queued(sessions, user_id, "twitter", now - timedelta(minutes=10), token="a")
    second = queued(sessions, user_id, "twitter", now - timedelta(minutes=10), token="b")
    other_platform = queued(sessions, user_id, "linkedin", now, token="c")

    outcomes = [publish_post(runtime, first, "a", now), publish_post(runtime, second, "b", now)]

    # One call reached X; the second post did not call it (X is paused for the whole app).
    assert creates(x, "/2/tweets") == 1 and x.posts == []
    assert [o.kind for o in outcomes] == ["review", "review"]  # the pause ends past the grace
    for post_id in (first, second):
        post = load_post(sessions, post_id)
        assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.STALE)
    with sessions() as session:
        hold = session.get(ProviderHold, "x")
        assert hold is not None and hold.kind == kind and hold.until > now
    notes = operator_notifications(sessions)
    assert [(n.kind, n.severity) for n in notes] == [(kind, "error")]
    # LinkedIn is not affected.
    assert publish_post(runtime, other_platform, "c", now).kind == "published"


def test_a_post_waits_for_the_pause_when_the_grace_allows_then_x_is_tried_once_more(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, x: FakeX,
        now: datetime, clock: SettableClock) -> None:
    runtime.settings = dataclasses.replace(runtime.settings, stale_grace_minutes=24 * 60)
    replay_next(x, "x/create_429_usage_capped", method="POST", path="/2/tweets")
    post_id = queued(sessions, user_id, "twitter", now)

    outcome = publish_post(runtime, post_id, "t0", now)

    assert outcome.kind == "retry" and outcome.retry_at is not None and outcome.retry_at > now
    assert outcome.claim_token is not None
    clock.now = outcome.retry_at
    # The operator raised the plan meanwhile: the retry publishes.
    assert publish_post(runtime, post_id, outcome.claim_token, outcome.retry_at).kind == "published"
    assert len(operator_notifications(sessions)) == 1


# -- LinkedIn -------------------------------------------------------------------------------


def test_linkedin_day_throttle_waits_for_midnight_utc_or_review(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, linkedin: FakeLinkedIn,
        clock: SettableClock, now: datetime) -> None:
    midnight = next_midnight_utc(now)
    # 30 minutes before midnight: midnight is within the grace, so the post waits for it.
    clock.now = midnight - timedelta(minutes=30)
    replay_next(linkedin, "linkedin/any_429_day_throttle", method="POST", path="/rest/posts")
    soon = queued(sessions, user_id, "linkedin", clock(), token="s")
    outcome = publish_post(runtime, soon, "s", clock())
    assert (outcome.kind, outcome.retry_at) == ("retry", midnight)

    # At noon, midnight is past the grace: review, not a retry every minute.
    clock.now = midnight - timedelta(hours=12)
    replay_next(linkedin, "linkedin/any_429_day_throttle", method="POST", path="/rest/posts")
    noon = queued(sessions, user_id, "linkedin", clock(), token="n")
    assert publish_post(runtime, noon, "n", clock()).kind == "review"
    assert load_post(sessions, noon).review_reason == ReviewReason.STALE


def test_linkedin_sunset_version_reviews_posts_and_notifies_the_operator_once(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, linkedin: FakeLinkedIn,
        now: datetime) -> None:
    replay_next(linkedin, "linkedin/any_426_nonexistent_version", method="POST", path="/rest/posts")
    replay_next(linkedin, "linkedin/any_426_nonexistent_version", method="POST", path="/rest/posts")
    ids = [queued(sessions, user_id, "linkedin", now, token=t, text=f"Post {t}") for t in ("a", "b")]

    outcomes = [publish_post(runtime, ids[0], "a", now), publish_post(runtime, ids[1], "b", now)]

    assert [o.kind for o in outcomes] == ["review", "review"]  # no retries
    assert creates(linkedin, "/rest/posts") == 2
    for post_id in ids:
        post = load_post(sessions, post_id)
        assert post.review_reason == ReviewReason.OPERATOR_PROBLEM
        assert "LINKEDIN_VERSION" in (post.last_error or "")
    notes = operator_notifications(sessions)
    assert [n.kind for n in notes] == ["linkedin_version_sunset"]
    assert "LINKEDIN_VERSION" in notes[0].body


def test_a_402_while_refreshing_the_token_is_an_operator_problem_not_a_revoked_account(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, x: FakeX, now: datetime) -> None:
    from app.models import AccountStatus, PlatformAccount

    with sessions.begin() as session:  # the token expires within the refresh margin
        account = session.scalar(select(PlatformAccount).where(PlatformAccount.platform == "twitter"))
        assert account is not None
        account.expires_at = now + timedelta(minutes=1)
    replay_next(x, "x/create_402_credits", method="POST", path="/2/oauth2/token")
    post_id = queued(sessions, user_id, "twitter", now - timedelta(minutes=10))

    assert publish_post(runtime, post_id, "t0", now).kind == "review"

    with sessions() as session:
        account = session.scalar(select(PlatformAccount).where(PlatformAccount.platform == "twitter"))
        assert account is not None and account.status == AccountStatus.ACTIVE  # not "reconnect"
    assert [n.kind for n in operator_notifications(sessions)] == ["x_payment_required"]
    assert creates(x, "/2/tweets") == 0
