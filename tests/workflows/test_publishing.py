"""The publishing workflow on PostgreSQL, with a scripted publisher standing in for a platform.

The real X and LinkedIn clients are tested against socket fakes in tests/providers; here the
publisher is a plain object whose every answer is scripted, so each error class can be forced
and every call counted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from app import posts
from app.clock import SettableClock
from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.intents import PublishPosts
from app.models import (
    AccountStatus,
    AuditLog,
    Notification,
    PlatformAccount,
    Post,
    PostStatus,
    ReviewReason,
)
from app.notifications import set_preferences
from app.providers.base import AccountCredentials, PostMetrics, PublishResult, TokenSet
from app.providers.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.providers.registry import Providers
from app.runtime import Runtime
from app.users import connect_account, create_user
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.publish import publish_post, publish_posts
from app.workflows.publish_outcomes import (
    DEFAULT_MAX_PUBLISH_ATTEMPTS,
    retry_backoff,
)
from app.workflows.sweep import sweep_stuck_posts

Step = BaseException | PublishResult | TokenSet | Callable[[], Any] | None


@dataclass
class ScriptedPublisher:
    """A Publisher whose answers are scripted per call; unscripted calls succeed."""

    platform: str
    name: str = "scripted"
    offline: bool = False
    publish_script: list[Step] = field(default_factory=list)
    find_script: list[Step] = field(default_factory=list)
    refresh_script: list[Step] = field(default_factory=list)
    publish_calls: list[tuple[str, str]] = field(default_factory=list)
    find_calls: list[tuple[str, datetime]] = field(default_factory=list)
    refresh_calls: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self, script: list[Step]) -> Step:
        with self._lock:
            return script.pop(0) if script else None

    @staticmethod
    def _play(step: Step) -> Any:
        if callable(step) and not isinstance(step, BaseException):
            step = step()
        if isinstance(step, BaseException):
            raise step
        return step

    def publish(self, account: AccountCredentials, text: str, ref: object = None) -> PublishResult:
        with self._lock:
            self.publish_calls.append((account.access_token, text))
            number = len(self.publish_calls)
        result = self._play(self._next(self.publish_script))
        return result or PublishResult(external_id=f"{self.platform}-{number}")

    def find_published(self, account: AccountCredentials, text: str, since: datetime,
                       ref: object = None) -> PublishResult | None:
        self.find_calls.append((text, since))
        return self._play(self._next(self.find_script))

    def refresh(self, account: AccountCredentials) -> TokenSet:
        self.refresh_calls.append(account.refresh_token or "")
        result = self._play(self._next(self.refresh_script))
        return result or TokenSet(access_token=f"access-{len(self.refresh_calls) + 1}")

    def fetch_metrics(self, account: AccountCredentials, external_ids: list[str]) -> dict[str, PostMetrics]:
        return {}


@pytest.fixture
def fake() -> ScriptedPublisher:
    return ScriptedPublisher("twitter")


@pytest.fixture
def runtime(settings: Settings, sessions: sessionmaker[Session], vault: TokenVault,
            fake: ScriptedPublisher, clock: SettableClock) -> Runtime:
    providers = Providers(research=None, generation=None,  # type: ignore[arg-type]
                          publishers={"twitter": fake, "linkedin": ScriptedPublisher("linkedin")})
    return Runtime(settings=settings, session_factory=sessions, providers=providers, vault=vault,
                   clock=clock)


@pytest.fixture
def user_id(sessions: sessionmaker[Session], vault: TokenVault, now: datetime) -> int:
    """alice@example.com with an X account whose token is valid for an hour."""
    with sessions.begin() as session:
        user = create_user(session, "alice@example.com", {"timezone": "UTC"})
        connect_account(session, vault, "alice@example.com", "twitter",
                        TokenSet("access-1", "refresh-1", expires_at=now + timedelta(hours=1)))
        return user.id


def add_post(sessions: sessionmaker[Session], user_id: int, at: datetime, *,
             status: str = PostStatus.SCHEDULED, token: str | None = None,
             text: str = "Shipping beats perfect.", **values: Any) -> int:
    with sessions.begin() as session:
        post = Post(user_id=user_id, platform="twitter", text=text, status=status,
                    scheduled_at=at, claim_token=token, **values)
        session.add(post)
        session.flush()
        return post.id


def queued(sessions: sessionmaker[Session], user_id: int, at: datetime, token: str = "t0", **values: Any) -> int:
    return add_post(sessions, user_id, at, status=PostStatus.QUEUED, token=token, queued_at=at, **values)


def load(sessions: sessionmaker[Session], post_id: int) -> Post:
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post


def account(sessions: sessionmaker[Session], user_id: int) -> PlatformAccount:
    with sessions() as session:
        row = session.scalar(select(PlatformAccount).where(PlatformAccount.user_id == user_id))
        assert row is not None
        return row


def actions(sessions: sessionmaker[Session], post_id: int) -> list[str]:
    with sessions() as session:
        return list(session.scalars(
            select(AuditLog.action).where(AuditLog.post_id == post_id).order_by(AuditLog.id)))


def audit_details(sessions: sessionmaker[Session], post_id: int, action: str) -> dict[str, Any]:
    with sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.post_id == post_id, AuditLog.action == action))
        assert row is not None, f"no {action} audit row"
        return row.details


def notifications(sessions: sessionmaker[Session], kind: str) -> list[Notification]:
    with sessions() as session:
        return list(session.scalars(select(Notification).where(Notification.kind == kind)))


# -- pure logic ---------------------------------------------------------------------------


@pytest.mark.parametrize("attempts", range(0, 12))
def test_backoff_grows_exponentially_with_jitter_and_is_capped(attempts: int) -> None:
    base = min(2 * 2**attempts, 300)
    low = retry_backoff(attempts, uniform=lambda a, b: a)
    high = retry_backoff(attempts, uniform=lambda a, b: b)
    assert low == timedelta(seconds=base * 0.5)
    assert high == timedelta(seconds=base * 1.5)
    assert high <= timedelta(minutes=7, seconds=30)


# -- dispatch -------------------------------------------------------------------------------


def test_dispatch_claims_posts_due_within_the_horizon_and_reviews_stale_ones(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    late = add_post(sessions, user_id, now - timedelta(minutes=30))
    soon = add_post(sessions, user_id, now + timedelta(minutes=1))
    edge = add_post(sessions, user_id, now + timedelta(minutes=2))
    later = add_post(sessions, user_id, now + timedelta(minutes=3))
    stale = add_post(sessions, user_id, now - timedelta(minutes=61))

    dispatched = dispatch_due_posts(runtime, now)

    assert [d.post_ids for d in dispatched] == [(late,), (soon,), (edge,)]
    assert len({d.claim_token for d in dispatched}) == 3
    for d in dispatched:
        [post_id] = d.post_ids
        post = load(sessions, post_id)
        assert (post.status, post.claim_token, post.queued_at) == (PostStatus.QUEUED, d.claim_token, now)
        assert d.due_at == post.scheduled_at
        assert actions(sessions, post_id) == ["post.queued"]
    assert load(sessions, later).status == PostStatus.SCHEDULED
    reviewed = load(sessions, stale)
    assert (reviewed.status, reviewed.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.STALE)
    assert audit_details(sessions, stale, "post.reviewed")["reason"] == ReviewReason.STALE


def test_dispatch_is_idempotent(runtime: Runtime, sessions: sessionmaker[Session], user_id: int,
                                now: datetime) -> None:
    add_post(sessions, user_id, now + timedelta(seconds=30))
    assert len(dispatch_due_posts(runtime, now)) == 1
    assert dispatch_due_posts(runtime, now) == []
    assert dispatch_due_posts(runtime, now + timedelta(seconds=20)) == []


def test_dispatch_runs_a_constant_number_of_statements(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    for i in range(40):
        add_post(sessions, user_id, now + timedelta(seconds=i), text=f"post {i}")
    statements: list[str] = []
    engine = sessions.kw["bind"]
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        dispatched = dispatch_due_posts(runtime, now)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(dispatched) == 40
    assert statements, "the listener saw no statements"
    # SELECT, UPDATE ... RETURNING, one batched INSERT of the audit rows (plus BEGIN/COMMIT noise).
    assert sum(s.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT")) for s in statements) <= 3


# -- publish: the happy path and the claim ----------------------------------------------------


def test_a_due_post_is_published_once_with_the_decrypted_token(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, clock: SettableClock) -> None:
    post_id = add_post(sessions, user_id, now + timedelta(seconds=30))
    [dispatch] = dispatch_due_posts(runtime, now)
    clock.now = now + timedelta(seconds=31)

    outcome = publish_post(runtime, post_id, dispatch.claim_token, now + timedelta(seconds=30))

    assert outcome.kind == "published"
    assert fake.publish_calls == [("access-1", "Shipping beats perfect.")]
    post = load(sessions, post_id)
    assert (post.status, post.external_id, post.published_at) == (
        PostStatus.PUBLISHED, "twitter-1", now + timedelta(seconds=31))
    assert (post.attempts, post.claim_token, post.last_error) == (1, None, None)
    assert post.publish_started_at == now + timedelta(seconds=30)
    assert audit_details(sessions, post_id, "post.published")["lateness_seconds"] == 1.0


def test_a_redelivered_message_publishes_once(runtime: Runtime, sessions: sessionmaker[Session],
                                              user_id: int, now: datetime, fake: ScriptedPublisher) -> None:
    post_id = queued(sessions, user_id, now)
    assert publish_post(runtime, post_id, "t0", now).kind == "published"
    second = publish_post(runtime, post_id, "t0", now)
    assert (second.kind, second.detail) == ("skipped", "the post is published")
    assert len(fake.publish_calls) == 1


def test_a_stale_claim_token_is_skipped(runtime: Runtime, sessions: sessionmaker[Session],
                                        user_id: int, now: datetime, fake: ScriptedPublisher) -> None:
    post_id = queued(sessions, user_id, now, token="current")
    outcome = publish_post(runtime, post_id, "superseded", now)
    assert (outcome.kind, outcome.detail) == ("skipped", "the claim token was superseded")
    assert fake.publish_calls == []
    assert load(sessions, post_id).status == PostStatus.QUEUED


def test_racing_workers_publish_exactly_once(runtime: Runtime, sessions: sessionmaker[Session],
                                             user_id: int, now: datetime, fake: ScriptedPublisher) -> None:
    post_id = queued(sessions, user_id, now)
    workers = 8
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []

    def worker() -> None:
        barrier.wait()
        outcomes.append(publish_post(runtime, post_id, "t0", now).kind)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(outcomes) == ["published"] + ["skipped"] * (workers - 1)
    assert len(fake.publish_calls) == 1
    assert load(sessions, post_id).attempts == 1


def test_a_cancelled_post_is_never_published(runtime: Runtime, sessions: sessionmaker[Session],
                                             user_id: int, now: datetime, fake: ScriptedPublisher) -> None:
    post_id = add_post(sessions, user_id, now + timedelta(minutes=1))
    [dispatch] = dispatch_due_posts(runtime, now)
    with sessions.begin() as session:
        posts.cancel(session, post_id)
    outcome = publish_post(runtime, post_id, dispatch.claim_token, now + timedelta(minutes=1))
    assert (outcome.kind, outcome.detail) == ("skipped", "the post is cancelled")
    assert fake.publish_calls == []


def test_a_message_arriving_past_the_grace_sends_the_post_to_review(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    post_id = queued(sessions, user_id, now)
    outcome = publish_post(runtime, post_id, "t0", now + timedelta(minutes=61))
    assert outcome.kind == "review"
    assert fake.publish_calls == []
    assert load(sessions, post_id).review_reason == ReviewReason.STALE


@pytest.mark.parametrize("status", [AccountStatus.NEEDS_REAUTH, AccountStatus.REVOKED, None])
def test_a_post_without_an_active_account_waits_for_review(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, status: str | None) -> None:
    with sessions.begin() as session:
        row = session.scalar(select(PlatformAccount))
        assert row is not None
        if status is None:
            session.delete(row)
        else:
            row.status = status
    post_id = queued(sessions, user_id, now)
    outcome = publish_post(runtime, post_id, "t0", now)
    assert outcome.kind == "review"
    assert fake.publish_calls == []
    post = load(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.NEEDS_REAUTH)
    expected_notifications = 1 if status == AccountStatus.NEEDS_REAUTH else 0
    assert len(notifications(sessions, "account_needs_reauth")) == expected_notifications


def test_a_token_that_cannot_be_decrypted_flags_the_account_and_the_post_waits_for_review(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    with sessions.begin() as session:
        row = session.scalar(select(PlatformAccount))
        assert row is not None
        # Encrypted under a key this deployment no longer has (a key rotated away too early).
        row.access_token_encrypted = TokenVault([generate_key()]).encrypt("access-1")
    post_id = queued(sessions, user_id, now)

    outcome = publish_post(runtime, post_id, "t0", now)

    assert outcome.kind == "review" and fake.publish_calls == []
    post = load(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.NEEDS_REAUTH)
    assert "cannot be decrypted" in (post.last_error or "")
    assert account(sessions, user_id).status == AccountStatus.NEEDS_REAUTH
    assert [n.subject for n in notifications(sessions, "account_needs_reauth")] == ["Reconnect your X account"]


# -- publish: errors known to have created nothing --------------------------------------------


def test_rate_limited_retries_at_the_reset_time_under_a_new_token(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    reset = now + timedelta(minutes=4)
    fake.publish_script = [RateLimited("429 Too Many Requests", reset_at=reset)]
    post_id = queued(sessions, user_id, now)

    outcome = publish_post(runtime, post_id, "t0", now)

    assert (outcome.kind, outcome.retry_at) == ("retry", reset)
    assert outcome.claim_token not in (None, "t0")
    post = load(sessions, post_id)
    assert (post.status, post.claim_token, post.queued_at) == (PostStatus.QUEUED, outcome.claim_token, reset)
    assert "429" in (post.last_error or "")
    assert audit_details(sessions, post_id, "post.retry")["retry_at"] == reset.isoformat()
    # The original message, redelivered, can no longer publish; the retry message can.
    assert publish_post(runtime, post_id, "t0", reset).kind == "skipped"
    assert outcome.claim_token is not None
    assert publish_post(runtime, post_id, outcome.claim_token, reset).kind == "published"
    assert len(fake.publish_calls) == 2


def test_rate_limited_without_a_reset_time_waits_a_minute(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    fake.publish_script = [RateLimited("429")]
    outcome = publish_post(runtime, queued(sessions, user_id, now), "t0", now)
    assert (outcome.kind, outcome.retry_at) == ("retry", now + timedelta(seconds=60))


def test_rate_limited_past_the_grace_goes_to_review(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    fake.publish_script = [RateLimited("429", reset_at=now + timedelta(minutes=90))]
    post_id = queued(sessions, user_id, now)
    assert publish_post(runtime, post_id, "t0", now).kind == "review"
    post = load(sessions, post_id)
    assert (post.status, post.review_reason, post.claim_token) == (
        PostStatus.NEEDS_REVIEW, ReviewReason.STALE, None)


def test_temporary_errors_back_off_and_are_bounded(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    fake.publish_script = [TemporaryError("503 Service Unavailable")] * DEFAULT_MAX_PUBLISH_ATTEMPTS
    post_id = queued(sessions, user_id, now)
    token = "t0"
    for attempt in range(1, DEFAULT_MAX_PUBLISH_ATTEMPTS):
        outcome = publish_post(runtime, post_id, token, now)
        assert outcome.kind == "retry"
        assert outcome.retry_at is not None
        base = min(2 * 2**attempt, 300)
        assert now + timedelta(seconds=base * 0.5) <= outcome.retry_at <= now + timedelta(seconds=base * 1.5)
        assert outcome.claim_token is not None and outcome.claim_token != token
        token = outcome.claim_token

    final = publish_post(runtime, post_id, token, now)

    assert final.kind == "review"
    post = load(sessions, post_id)
    assert (post.status, post.review_reason, post.attempts) == (
        PostStatus.NEEDS_REVIEW, ReviewReason.RETRIES_EXHAUSTED, DEFAULT_MAX_PUBLISH_ATTEMPTS)
    assert "503" in (post.last_error or "")
    assert len(fake.publish_calls) == DEFAULT_MAX_PUBLISH_ATTEMPTS


# -- publish: errors that end in review ---------------------------------------------------------


def test_a_permanent_error_goes_to_review_with_the_platforms_message(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    fake.publish_script = [PermanentError("403: You are not allowed to create a duplicate post")]
    post_id = queued(sessions, user_id, now)
    assert publish_post(runtime, post_id, "t0", now).kind == "review"
    post = load(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.PERMANENT_ERROR)
    assert "duplicate post" in (post.last_error or "")
    assert actions(sessions, post_id) == ["post.reviewed"]
    assert len(fake.publish_calls) == 1


def test_a_refused_token_is_refreshed_once_and_the_post_published(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, vault: TokenVault) -> None:
    fake.publish_script = [AuthError("401 Unauthorized")]
    fake.refresh_script = [TokenSet("access-2", None, expires_at=now + timedelta(hours=2))]
    post_id = queued(sessions, user_id, now)

    assert publish_post(runtime, post_id, "t0", now).kind == "published"

    assert [token for token, _ in fake.publish_calls] == ["access-1", "access-2"]
    assert fake.refresh_calls == ["refresh-1"]
    creds = vault.credentials(account(sessions, user_id))
    # The new access token is stored; the refresh token absent from the answer is kept.
    assert (creds.access_token, creds.refresh_token) == ("access-2", "refresh-1")
    assert load(sessions, post_id).attempts == 1


def test_an_expiring_token_is_refreshed_before_publishing(
        runtime: Runtime, sessions: sessionmaker[Session], vault: TokenVault, now: datetime,
        fake: ScriptedPublisher) -> None:
    with sessions.begin() as session:
        user = create_user(session, "bob@example.com", {})
        connect_account(session, vault, "bob@example.com", "twitter",
                        TokenSet("old", "refresh-old", expires_at=now + timedelta(minutes=2)))
    fake.refresh_script = [TokenSet("new", "refresh-new", expires_at=now + timedelta(hours=2))]
    post_id = queued(sessions, user.id, now)

    assert publish_post(runtime, post_id, "t0", now).kind == "published"

    assert fake.refresh_calls == ["refresh-old"]
    assert [token for token, _ in fake.publish_calls] == ["new"]
    creds = vault.credentials(account(sessions, user.id))
    assert (creds.access_token, creds.refresh_token) == ("new", "refresh-new")


@pytest.mark.parametrize("second", ["refresh refused", "publish refused again"])
def test_a_revoked_grant_flags_the_account_and_notifies_once(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, second: str) -> None:
    if second == "refresh refused":
        fake.publish_script = [AuthError("401 Unauthorized")]
        fake.refresh_script = [AuthError("invalid_grant")]
    else:
        fake.publish_script = [AuthError("401 Unauthorized"), AuthError("401 again")]
    first = queued(sessions, user_id, now, token="a")
    other = queued(sessions, user_id, now + timedelta(minutes=1), token="b")

    assert publish_post(runtime, first, "a", now).kind == "review"
    assert publish_post(runtime, other, "b", now + timedelta(minutes=1)).kind == "review"

    assert len(fake.refresh_calls) == 1
    assert len(fake.publish_calls) == (1 if second == "refresh refused" else 2)
    for post_id in (first, other):
        post = load(sessions, post_id)
        assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.NEEDS_REAUTH)
    acct = account(sessions, user_id)
    assert (acct.status, acct.reauth_notified_at) == (AccountStatus.NEEDS_REAUTH, now)
    [notice] = notifications(sessions, "account_needs_reauth")
    assert (notice.user_id, notice.severity, notice.emailed_at) == (user_id, "error", None)
    assert "Reconnect your X account" == notice.subject


# -- publish: unknown outcomes are reconciled, never re-published --------------------------------


def test_an_unknown_outcome_found_on_the_platform_is_recorded_as_published(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    fake.publish_script = [OutcomeUnknown("read timeout after sending")]
    fake.find_script = [PublishResult("x-found-42")]
    post_id = queued(sessions, user_id, now)

    outcome = publish_post(runtime, post_id, "t0", now)

    assert outcome.kind == "published"
    assert len(fake.publish_calls) == 1
    assert fake.find_calls == [("Shipping beats perfect.", now - timedelta(minutes=1))]
    post = load(sessions, post_id)
    assert (post.status, post.external_id) == (PostStatus.PUBLISHED, "x-found-42")
    assert "read timeout" in (post.last_error or "")
    assert actions(sessions, post_id) == ["post.reconciled"]


@pytest.mark.parametrize("publish_error", [OutcomeUnknown("timeout"), RuntimeError("socket closed")])
@pytest.mark.parametrize("lookup", [None, NotImplementedError(), TemporaryError("lookup 503")])
def test_an_unknown_outcome_not_confirmed_goes_to_review_never_republished(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, publish_error: Exception, lookup: Step) -> None:
    fake.publish_script = [publish_error]
    fake.find_script = [lookup]
    post_id = queued(sessions, user_id, now)

    outcome = publish_post(runtime, post_id, "t0", now)

    assert outcome.kind == "review"
    assert len(fake.publish_calls) == 1
    assert len(fake.find_calls) == 1
    post = load(sessions, post_id)
    assert (post.status, post.review_reason, post.external_id) == (
        PostStatus.NEEDS_REVIEW, ReviewReason.OUTCOME_UNKNOWN, None)
    assert type(publish_error).__name__ in (post.last_error or "")
    # A redelivery of the same message cannot publish it either.
    assert publish_post(runtime, post_id, "t0", now).kind == "skipped"
    assert len(fake.publish_calls) == 1


# -- sweep --------------------------------------------------------------------------------------


def test_sweep_resends_a_lost_queued_post_under_a_new_token(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    post_id = queued(sessions, user_id, now - timedelta(minutes=10), token="lost")
    waiting = queued(sessions, user_id, now - timedelta(minutes=1), token="in-flight")

    dispatched = sweep_stuck_posts(runtime, now)

    assert [d.post_ids for d in dispatched] == [(post_id,)]
    [d] = dispatched
    assert d.claim_token != "lost"
    assert load(sessions, waiting).claim_token == "in-flight"
    assert publish_post(runtime, post_id, "lost", now).kind == "skipped"
    assert publish_post(runtime, post_id, d.claim_token, now).kind == "published"
    assert len(fake.publish_calls) == 1
    assert sweep_stuck_posts(runtime, now) == []


def test_sweep_leaves_a_post_waiting_for_its_rate_limit_reset(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    fake.publish_script = [RateLimited("429", reset_at=now + timedelta(minutes=20))]
    post_id = queued(sessions, user_id, now - timedelta(minutes=5))
    outcome = publish_post(runtime, post_id, "t0", now)
    assert outcome.kind == "retry"
    assert sweep_stuck_posts(runtime, now + timedelta(minutes=10)) == []
    [d] = sweep_stuck_posts(runtime, now + timedelta(minutes=24))
    assert d.post_ids == (post_id,)


def test_sweep_sends_a_lost_post_past_the_grace_to_review(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    post_id = queued(sessions, user_id, now - timedelta(minutes=70))
    assert sweep_stuck_posts(runtime, now) == []
    post = load(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.STALE)


@pytest.mark.parametrize("found", [True, False])
def test_sweep_reconciles_a_post_whose_worker_died_mid_publish(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, found: bool) -> None:
    started = now - timedelta(minutes=5)
    stuck = add_post(sessions, user_id, started, status=PostStatus.PUBLISHING, token="dead",
                     publish_started_at=started, attempts=1)
    fresh = add_post(sessions, user_id, now, status=PostStatus.PUBLISHING, token="alive",
                     publish_started_at=now - timedelta(seconds=30), attempts=1, text="other")
    fake.find_script = [PublishResult("x-77") if found else None]

    assert sweep_stuck_posts(runtime, now) == []

    assert fake.publish_calls == []
    assert fake.find_calls == [("Shipping beats perfect.", started - timedelta(minutes=1))]
    post = load(sessions, stuck)
    if found:
        assert (post.status, post.external_id) == (PostStatus.PUBLISHED, "x-77")
        assert actions(sessions, stuck) == ["post.reconciled"]
    else:
        assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.OUTCOME_UNKNOWN)
    assert load(sessions, fresh).status == PostStatus.PUBLISHING


def test_a_slow_worker_that_succeeds_after_the_sweeper_gave_up_records_the_publication(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    post_id = queued(sessions, user_id, now)

    def sweeper_runs_meanwhile() -> None:
        sweep_stuck_posts(runtime, now + timedelta(minutes=3))  # the platform has nothing yet
        assert load(sessions, post_id).review_reason == ReviewReason.OUTCOME_UNKNOWN

    fake.publish_script = [sweeper_runs_meanwhile]
    assert publish_post(runtime, post_id, "t0", now).kind == "published"
    post = load(sessions, post_id)
    assert (post.status, post.external_id, post.review_reason) == (PostStatus.PUBLISHED, "twitter-1", None)


def test_sweep_also_dispatches_due_scheduled_posts(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    post_id = add_post(sessions, user_id, now - timedelta(minutes=20))
    [d] = sweep_stuck_posts(runtime, now)
    assert d == PublishPosts(load(sessions, post_id).claim_token or "", now - timedelta(minutes=20), (post_id,))


# -- review queue -------------------------------------------------------------------------------


def test_posts_sent_to_review_for_a_failure_are_one_notification_per_user_per_run(
        runtime: Runtime, sessions: sessionmaker[Session], vault: TokenVault, user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    with sessions.begin() as session:
        bob = create_user(session, "bob@example.com", {"timezone": "Europe/Paris"}).id
        connect_account(session, vault, "bob@example.com", "twitter",
                        TokenSet("access-b", "refresh-b", expires_at=now + timedelta(hours=1)))
        set_preferences(session, bob, {"review_queue_growing": "off"}, weekly_report_email=True, actor="test")
    # Alice's own approval queue is hers to work through: not a failure, not in the notice.
    for n in range(6):
        add_post(sessions, user_id, now + timedelta(days=1), status=PostStatus.NEEDS_REVIEW,
                 review_reason=ReviewReason.APPROVAL, text=f"awaiting approval {n}")
    alice_posts = [queued(sessions, user_id, now, token="batch", text=f"failing post {n:02d}") for n in range(40)]
    bob_post = add_post(sessions, bob, now, status=PostStatus.QUEUED, token="batch", queued_at=now,
                        text="bob's post")
    fake.publish_script.extend(PermanentError("400 bad request") for _ in range(41))
    inserts: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO notifications"):
            inserts.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        batch = publish_posts(runtime, [*alice_posts, bob_post], "batch", now)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert {outcome.kind for outcome in batch.outcomes.values()} == {"review"}
    assert len(inserts) == 1  # one INSERT for the whole batch, whatever the users and posts
    by_user = {row.user_id: row for row in notifications(sessions, "review_queue_growing")}
    assert set(by_user) == {user_id, bob}
    alice_notice = by_user[user_id]
    assert alice_notice.subject == "40 posts sent to review"
    assert "failing post 00" in alice_notice.body and "awaiting approval" not in alice_notice.body
    assert "X refused it" in alice_notice.body and "400 bad request" in alice_notice.body
    assert alice_notice.email_delivery == "now"
    bob_notice = by_user[bob]
    assert bob_notice.subject == "1 post sent to review" and "bob's post" in bob_notice.body
    assert "CET" in bob_notice.body or "CEST" in bob_notice.body  # his local time
    assert bob_notice.email_delivery == "off"  # his choice for this kind


def test_a_stale_post_found_by_the_dispatch_is_notified_too(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    post_id = add_post(sessions, user_id, now - timedelta(hours=3), text="too late to post")
    assert dispatch_due_posts(runtime, now) == []
    assert load(sessions, post_id).review_reason == ReviewReason.STALE
    [notice] = notifications(sessions, "review_queue_growing")
    assert notice.subject == "1 post sent to review" and "too late to post" in notice.body
    assert "too late" in notice.body


# -- the embedded database ------------------------------------------------------------------------


def test_dispatch_publish_and_sweep_also_work_on_sqlite(
        sqlite_engine: Any, settings: Settings, vault: TokenVault, now: datetime) -> None:
    from app.db import make_session_factory

    sessions = make_session_factory(sqlite_engine)
    fake = ScriptedPublisher("twitter", find_script=[PublishResult("x-found")])
    providers = Providers(research=None, generation=None, publishers={"twitter": fake})  # type: ignore[arg-type]
    runtime = Runtime(settings=settings, session_factory=sessions, providers=providers, vault=vault,
                      clock=SettableClock(now))
    with sessions.begin() as session:
        user = create_user(session, "erin@example.com", {})
        connect_account(session, vault, "erin@example.com", "twitter", TokenSet("access-1"))
    due = add_post(sessions, user.id, now + timedelta(minutes=1), text="due")
    lost = queued(sessions, user.id, now - timedelta(minutes=10), token="lost", text="lost")
    stuck = add_post(sessions, user.id, now - timedelta(minutes=5), status=PostStatus.PUBLISHING,
                     token="dead", publish_started_at=now - timedelta(minutes=5), text="stuck")

    dispatched = sweep_stuck_posts(runtime, now)

    assert sorted(post_id for d in dispatched for post_id in d.post_ids) == sorted([due, lost])
    for d in dispatched:
        assert publish_posts(runtime, d.post_ids, d.claim_token, now).outcomes[d.post_ids[0]].kind == "published"
    assert publish_post(runtime, lost, "lost", now).kind == "skipped"
    assert [load(sessions, p).status for p in (due, lost, stuck)] == [PostStatus.PUBLISHED] * 3
    assert len(fake.publish_calls) == 2
