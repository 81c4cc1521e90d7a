"""Publishing end to end: real worker processes, Redis, PostgreSQL and fake platforms on sockets.

Each test schedules a post a moment ahead, claims it with ``dispatch_due_posts`` and enqueues
the ``publish_posts`` message exactly as ``actors.messages.send`` would (no delay: the
actor waits for the exact second itself). A real ``dramatiq actors.entrypoint -Q posting`` worker then
publishes through the real X / LinkedIn clients to :mod:`tests.fakes.x` and :mod:`tests.fakes.linkedin`, and the test
polls the database (bounded) for the final state and counts what the platform received.

Every error class of ARCHITECTURE decision 4 is covered: rate limited, temporary, auth,
permanent, outcome unknown, plus a worker SIGKILLed mid-call and two workers racing.

Isolation: the shared worker consumes ``posting`` on its own Redis database (not the db 13
that other engine tests flush), and tests needing a different worker configuration start
their own on yet another database, so no worker steals another's messages.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import func, select, update

from app import posts
from app.broker import build_broker
from app.config import Settings
from app.crypto import generate_key
from app.models import (
    AccountStatus,
    AuditLog,
    Notification,
    PlatformAccount,
    Post,
    PostStatus,
    ReviewReason,
    User,
)
from app.providers.base import TokenSet
from app.runtime import Runtime
from app.users import connect_account
from app.workflows.accounts import NOTIFY_REAUTH
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.publish_outcomes import DEFAULT_MAX_PUBLISH_ATTEMPTS
from app.workflows.sweep import sweep_stuck_posts
from tests import services
from tests.factories import make_users
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.platform import unused_base_url
from tests.fakes.x import FakeX
from tests.workers import Worker, wait_for
from tests.workers import start_worker as start_dramatiq_worker

pytestmark = pytest.mark.slow

KEY = generate_key()
#: How far ahead each post is scheduled: the worker has the message before its second.
LEAD = timedelta(seconds=1.5)
#: Read timeout of the shared worker's platform calls: a hung request is an unknown outcome fast.
FAST_TIMEOUT_SECONDS = 2
EMAIL = "user0@example.com"


# -- infrastructure -----------------------------------------------------------------------


def redis_db_url(offset: int) -> str:
    """A Redis database next to the test one, owned by this module."""
    base, db = services.TEST_REDIS_URL.rsplit("/", 1)
    return f"{base}/{(int(db) + offset) % 16}"


def start_worker(env: dict[str, str], log: Path, *, threads: int = 4) -> Worker:
    """The shared posting worker of this module (and of tests that borrow its world)."""
    return start_dramatiq_worker(env, log, "posting", threads=threads)


def wait_ready(client: redis.Redis, workers: int, since: float, timeout: float = 30) -> bool:
    """Whether ``workers`` consumers have polled Redis since ``since`` (epoch seconds)."""
    return bool(wait_for(
        lambda: client.zcount("dramatiq:__heartbeats__", since * 1000, "+inf") >= workers, timeout))


def unacked(client: redis.Redis) -> int:
    """Messages on the posting queue not yet acknowledged (queued or being processed)."""
    return client.hlen("dramatiq:posting.msgs") + client.hlen("dramatiq:posting.DQ.msgs")


def worker_env(pg_url: str, redis_url: str, fx: FakeX, fl: FakeLinkedIn, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("X_", "LINKEDIN_", "OPENAI_", "SERPER_", "SENTRY_", "REDIS_"))}
    env.update({
        "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "TOKEN_ENCRYPTION_KEYS": KEY,
        "X_CLIENT_ID": fx.client_id, "X_API_BASE_URL": fx.base_url,
        "LINKEDIN_CLIENT_ID": fl.client_id, "LINKEDIN_CLIENT_SECRET": fl.client_secret,
        "LINKEDIN_API_BASE_URL": fl.base_url, "LINKEDIN_OAUTH_BASE_URL": fl.base_url,
        "PROVIDER_TIMEOUT_SECONDS": str(FAST_TIMEOUT_SECONDS),
        **extra,
    })
    return env


def settings_from(env: dict[str, str]) -> Settings:
    """The Settings a worker with ``env`` runs with (the test's runtime uses the same)."""
    return Settings.from_env(env)


class OffsetClock:
    """The wall clock, optionally moved ahead (to let the sweeper see a lease as expired)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def publish_message(post_ids: Sequence[int], claim_token: str, due_at: datetime) -> dramatiq.Message:
    return dramatiq.Message(queue_name="posting", actor_name="publish_posts",
                            args=(list(post_ids), claim_token, due_at.isoformat()), kwargs={}, options={})


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeX, FakeLinkedIn]]:
    with FakeX() as fx, FakeLinkedIn() as fl:
        yield fx, fl


@pytest.fixture(scope="module")
def shared_env(pg_url: str, fakes: tuple[FakeX, FakeLinkedIn]) -> dict[str, str]:
    return worker_env(pg_url, redis_db_url(1), *fakes)


@pytest.fixture(scope="module")
def shared_redis(shared_env: dict[str, str]) -> Iterator[redis.Redis]:
    services.redis_client()  # skips (or fails under CI) without Redis
    client = redis.Redis.from_url(shared_env["REDIS_URL"])
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def shared_worker(shared_env: dict[str, str], shared_redis: redis.Redis,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    started = time.time()
    worker = start_worker(shared_env, tmp_path_factory.mktemp("worker") / "shared.log")
    try:
        assert wait_ready(shared_redis, 1, started), worker.stderr()
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def shared_broker(shared_env: dict[str, str]) -> Iterator[dramatiq.Broker]:
    broker = build_broker(settings_from(shared_env))
    yield broker
    broker.close()


@pytest.fixture
def platforms(fakes: tuple[FakeX, FakeLinkedIn]) -> tuple[FakeX, FakeLinkedIn]:
    """The module's fakes, back to a fresh account with no posts and nothing scripted."""
    fx, fl = fakes
    for fake, prefix in ((fx, "x"), (fl, "li")):
        with fake._lock:
            fake.requests.clear()
            fake._script.clear()
            fake.posts.clear()
            fake._generation = 1
            fake.access_token = f"{prefix}-access-1"
            fake.refresh_token = f"{prefix}-refresh-1"
    fl.posts_readable = True
    return fx, fl


@dataclass
class World:
    """Everything one test drives: the runtime (same settings as the worker), fakes, broker."""

    runtime: Runtime
    clock: OffsetClock
    fx: FakeX
    fl: FakeLinkedIn
    broker: dramatiq.Broker
    worker: Worker
    user_id: int = 0

    def post(self, post_id: int) -> Post:
        with self.runtime.session_factory() as session:
            post = session.get(Post, post_id)
            assert post is not None
            session.expunge(post)
            return post

    def account(self, platform: str) -> PlatformAccount:
        with self.runtime.session_factory() as session:
            account = session.scalar(select(PlatformAccount).where(
                PlatformAccount.user_id == self.user_id, PlatformAccount.platform == platform))
            assert account is not None
            session.expunge(account)
            return account

    def connect(self, platform: str) -> None:
        fake = self.fx if platform == "twitter" else self.fl
        external = self.fx.user_id if platform == "twitter" else self.fl.member_urn
        with self.runtime.session_factory() as session, session.begin():
            connect_account(session, self.runtime.vault, EMAIL, platform,
                            TokenSet(fake.access_token, fake.refresh_token,
                                     expires_at=self.clock() + timedelta(hours=2)),
                            external_id=external)

    def schedule(self, platform: str, text: str, *, lead: timedelta = LEAD) -> int:
        now = self.clock()
        with self.runtime.session_factory() as session, session.begin():
            user = session.get(User, self.user_id)
            assert user is not None
            return posts.create_one_off(session, user, platform, now + lead, text, now=now).id

    def dispatch(self, *, copies: int = 1) -> dict[int, tuple[str, datetime]]:
        """Claim what is due and enqueue each message ``copies`` times, as actors.messages.send would."""
        claimed = dispatch_due_posts(self.runtime, self.clock())
        for d in claimed:
            for _ in range(copies):
                self.broker.enqueue(publish_message(d.post_ids, d.claim_token, d.due_at))
        return {post_id: (d.claim_token, d.due_at) for d in claimed for post_id in d.post_ids}

    def wait_status(self, post_id: int, *statuses: str, timeout: float = 20) -> Post:
        found = wait_for(lambda: (p := self.post(post_id)).status in statuses and p, timeout)
        post = self.post(post_id)
        assert found, (f"post {post_id} is {post.status} ({post.last_error}), expected {statuses}\n"
                       f"{self.worker.stderr()}")
        return post

    def count(self, model: type, *where: Any) -> int:
        with self.runtime.session_factory() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def make_world(env: dict[str, str], platforms: tuple[FakeX, FakeLinkedIn],
               broker: dramatiq.Broker, worker: Worker) -> World:
    clock = OffsetClock()
    world = World(Runtime.from_settings(settings_from(env), clock=clock), clock, *platforms,
                  broker=broker, worker=worker)
    world.user_id = make_users(world.runtime, 1)[0]
    world.connect("twitter")
    world.connect("linkedin")
    return world


@pytest.fixture
def world(pg_engine, shared_env, platforms, shared_broker, shared_worker) -> World:  # type: ignore[no-untyped-def]
    return make_world(shared_env, platforms, shared_broker, shared_worker)


def tweet_posts(fx: FakeX) -> list:  # type: ignore[type-arg]
    return fx.requests_to("/2/tweets", "POST")


# -- success ------------------------------------------------------------------------------


def test_x_post_is_published_once_on_its_second_with_the_account_token(world: World) -> None:
    post_id = world.schedule("twitter", "Ship small, ship often.")
    (token, due), = world.dispatch().values()

    post = world.wait_status(post_id, PostStatus.PUBLISHED)

    [request] = tweet_posts(world.fx)
    assert request.headers["authorization"] == "Bearer x-access-1"
    assert request.json == {"text": "Ship small, ship often."}
    [tweet] = world.fx.posts
    assert post.external_id == tweet.id and post.attempts == 1 and post.last_error is None
    assert tweet.created_at >= due, "published before its time"
    assert post.published_at is not None and post.published_at - due < timedelta(seconds=5)


def test_posts_due_at_one_second_travel_in_one_message_and_each_goes_out_once(world: World) -> None:
    due = (world.clock() + timedelta(seconds=2)).replace(microsecond=0)
    with world.runtime.session_factory() as session, session.begin():
        user = session.get(User, world.user_id)
        assert user is not None
        ids = [posts.create_one_off(session, user, "twitter", due, f"Same second, post {n}.", now=world.clock()).id
               for n in range(6)]
    claimed = world.dispatch(copies=2)  # and a duplicated message: still once each

    assert sorted(claimed) == ids and len({token for token, _ in claimed.values()}) == 1
    for post_id in ids:
        world.wait_status(post_id, PostStatus.PUBLISHED)
    requests = tweet_posts(world.fx)
    assert sorted(r.json["text"] for r in requests) == sorted(f"Same second, post {n}." for n in range(6))
    assert all(r.received_at >= due.timestamp() for r in requests), "published before its time"
    assert max(r.received_at for r in requests) - due.timestamp() < 3


def test_a_one_post_message_from_before_batches_is_still_published(world: World) -> None:
    """Messages in flight across an upgrade use the old actor and arguments."""
    post_id = world.schedule("twitter", "Sent by the previous release.")
    claimed = dispatch_due_posts(world.runtime, world.clock())
    [(token, due)] = [(b.claim_token, b.due_at) for b in claimed]
    world.broker.enqueue(dramatiq.Message(queue_name="posting", actor_name="publish_post",
                                          args=(post_id, token, due.isoformat()), kwargs={}, options={}))

    post = world.wait_status(post_id, PostStatus.PUBLISHED)

    assert len(tweet_posts(world.fx)) == 1 and post.attempts == 1


def test_linkedin_post_is_published_with_the_documented_headers(world: World) -> None:
    text = "Lessons (and mistakes) from #python @scale_up: 100% worth it"
    post_id = world.schedule("linkedin", text)
    (_, due), = world.dispatch().values()

    post = world.wait_status(post_id, PostStatus.PUBLISHED)

    [request] = world.fl.requests_to("/rest/posts", "POST")
    assert request.headers["linkedin-version"] == world.runtime.settings.linkedin_version
    assert request.headers["x-restli-protocol-version"] == "2.0.0"
    assert request.headers["authorization"] == "Bearer li-access-1"
    assert request.headers["content-type"].startswith("application/json")
    assert request.json["author"] == world.fl.member_urn
    assert request.json["commentary"] == r"Lessons \(and mistakes\) from {hashtag|\#|python} \@scale\_up: 100% worth it"
    [created] = world.fl.posts
    assert post.external_id == created.urn and post.attempts == 1
    assert created.created_ms >= due.timestamp() * 1000


# -- rate limited and temporary errors ----------------------------------------------------


def test_429_waits_for_the_reset_then_publishes_once(world: World) -> None:
    reset_at = datetime.fromtimestamp(int(world.clock().timestamp()) + 4, UTC)
    world.fx.rate_limit_next(reset_at)
    post_id = world.schedule("twitter", "Patience is a rate-limit strategy.")
    world.dispatch()

    # The 429 sends it back to queued under a new claim, due at the reset.
    assert wait_for(lambda: (p := world.post(post_id)).attempts == 1
                    and p.status == PostStatus.QUEUED, 10), world.worker.stderr()
    waiting = world.post(post_id)
    assert waiting.queued_at == reset_at and tweet_posts(world.fx)
    assert "429" in (waiting.last_error or "") or "rate limit" in (waiting.last_error or "")

    post = world.wait_status(post_id, PostStatus.PUBLISHED, timeout=20)
    first, second = tweet_posts(world.fx)
    assert first.headers["authorization"] == second.headers["authorization"]
    [tweet] = world.fx.posts
    assert tweet.created_at >= reset_at, "retried before the rate limit's reset"
    assert post.external_id == tweet.id and post.attempts == 2


def test_503_is_retried_with_backoff_and_publishes_once(world: World) -> None:
    world.fx.respond_next(503, {"title": "Service Unavailable", "detail": "Over capacity"},
                          method="POST", path="/2/tweets")
    post_id = world.schedule("twitter", "Retry, but only what provably did not happen.")
    world.dispatch()

    post = world.wait_status(post_id, PostStatus.PUBLISHED, timeout=25)

    assert len(tweet_posts(world.fx)) == 2
    [tweet] = world.fx.posts
    assert post.external_id == tweet.id and post.attempts == 2
    with world.runtime.session_factory() as session:
        [retry] = session.scalars(select(AuditLog).where(AuditLog.post_id == post_id,
                                                         AuditLog.action == "post.retry")).all()
    assert "503" in retry.details["error"]
    # Backoff after one attempt: 4 s +-50 %.
    retry_at = datetime.fromisoformat(retry.details["retry_at"])
    assert tweet.created_at >= retry_at


@pytest.fixture
def refused_world(pg_engine, pg_url, platforms, tmp_path) -> Iterator[World]:  # type: ignore[no-untyped-def]
    """A worker whose X base URL refuses connections (nothing listens there)."""
    env = worker_env(pg_url, redis_db_url(2), *platforms, X_API_BASE_URL=unused_base_url())
    client = redis.Redis.from_url(env["REDIS_URL"])
    client.flushdb()
    broker = build_broker(settings_from(env))
    worker = start_worker(env, tmp_path / "refused.log", threads=2)
    try:
        yield make_world(env, platforms, broker, worker)
    finally:
        worker.stop()
        broker.close()
        client.close()


def test_connection_refused_is_retried_with_backoff_and_bounded(refused_world: World) -> None:
    world = refused_world
    post_id = world.schedule("twitter", "Nobody home.")
    (first_token, _), = world.dispatch().values()

    # First attempt refused: back to queued under a new claim with a retry scheduled.
    assert wait_for(lambda: (p := world.post(post_id)).attempts == 1
                    and p.status == PostStatus.QUEUED, 30), world.worker.stderr()
    waiting = world.post(post_id)
    assert waiting.claim_token not in (None, first_token)
    assert waiting.queued_at is not None and waiting.queued_at > waiting.publish_started_at
    assert "unreachable" in (waiting.last_error or "")

    # Pretend the earlier attempts were used up: the retry in flight is the last allowed.
    with world.runtime.session_factory() as session, session.begin():
        moved = session.execute(
            update(Post).where(Post.id == post_id, Post.status == PostStatus.QUEUED,
                               Post.claim_token == waiting.claim_token)
            .values(attempts=DEFAULT_MAX_PUBLISH_ATTEMPTS - 1)).rowcount
    assert moved == 1, "the retry ran before the test could shorten the budget"

    post = world.wait_status(post_id, PostStatus.NEEDS_REVIEW, timeout=20)
    assert post.review_reason == ReviewReason.RETRIES_EXHAUSTED
    assert post.attempts == DEFAULT_MAX_PUBLISH_ATTEMPTS and post.external_id is None
    assert "unreachable" in (post.last_error or "")
    assert world.fx.posts == [] and tweet_posts(world.fx) == []


# -- authentication -----------------------------------------------------------------------


def test_401_refreshes_the_token_once_and_publishes_with_the_new_one(world: World) -> None:
    world.fx.revoke_access_token()
    post_id = world.schedule("twitter", "Tokens expire; posts should not.")
    world.dispatch()

    post = world.wait_status(post_id, PostStatus.PUBLISHED)

    rejected, accepted = tweet_posts(world.fx)
    assert rejected.headers["authorization"] == "Bearer x-access-1"
    assert accepted.headers["authorization"] == "Bearer x-access-2"
    [refresh] = world.fx.requests_to("/2/oauth2/token", "POST")
    assert refresh.form["refresh_token"] == "x-refresh-1"
    [tweet] = world.fx.posts
    assert post.external_id == tweet.id and post.attempts == 1
    account = world.account("twitter")
    creds = world.runtime.vault.credentials(account)
    assert (creds.access_token, creds.refresh_token) == ("x-access-2", "x-refresh-2")
    assert account.status == AccountStatus.ACTIVE


def test_refused_refresh_flags_the_account_notifies_once_and_reviews(world: World) -> None:
    world.fx.revoke_access_token()
    world.fx.refresh_token = "x-refresh-issued-elsewhere"  # the stored one is no longer valid
    first = world.schedule("twitter", "First post after the token died.")
    second = world.schedule("twitter", "Second post after the token died.",
                            lead=LEAD + timedelta(seconds=1))
    world.dispatch()

    for post_id in (first, second):
        post = world.wait_status(post_id, PostStatus.NEEDS_REVIEW)
        assert post.review_reason == ReviewReason.NEEDS_REAUTH and post.external_id is None
    assert "refused the refresh token" in (world.post(first).last_error or "")

    assert world.account("twitter").status == AccountStatus.NEEDS_REAUTH
    assert world.count(Notification, Notification.kind == NOTIFY_REAUTH) == 1
    # One refused publish and one refused refresh; the second post never reached X.
    assert len(tweet_posts(world.fx)) == 1
    assert len(world.fx.requests_to("/2/oauth2/token", "POST")) == 1
    assert world.fx.posts == []


# -- permanent errors ---------------------------------------------------------------------


def test_duplicate_content_and_bad_request_go_to_review_with_the_platform_message(world: World) -> None:
    world.fx.add_post("Said it before.")  # X refuses duplicate content with 403
    world.fx.respond_next(400, {"errors": [{"message": "text contains a forbidden entity"}],
                                "title": "Invalid Request",
                                "detail": "One or more parameters to your request was invalid."},
                          method="POST", path="/2/tweets")
    bad = world.schedule("twitter", "Rejected as invalid.")
    duplicate = world.schedule("twitter", "Said it before.", lead=LEAD + timedelta(seconds=1))
    world.dispatch()

    reviewed = {p: world.wait_status(p, PostStatus.NEEDS_REVIEW) for p in (bad, duplicate)}

    assert all(p.review_reason == ReviewReason.PERMANENT_ERROR for p in reviewed.values())
    assert "(400)" in reviewed[bad].last_error and "forbidden entity" in reviewed[bad].last_error
    assert "(403)" in reviewed[duplicate].last_error
    assert "duplicate content" in reviewed[duplicate].last_error
    assert len(tweet_posts(world.fx)) == 2  # one call each, never retried
    assert [p.text for p in world.fx.posts] == ["Said it before."]


# -- outcome unknown ----------------------------------------------------------------------


def test_timeout_after_sending_is_reconciled_from_the_timeline_not_reposted(world: World) -> None:
    world.fx.hang_next(path="/2/tweets")  # X creates the tweet, then never answers in time
    post_id = world.schedule("twitter", "Did it go out? Ask, don't guess: https://example.com/a")
    world.dispatch()

    post = world.wait_status(post_id, PostStatus.PUBLISHED, timeout=20)

    assert len(tweet_posts(world.fx)) == 1
    assert world.fx.requests_to(f"/2/users/{world.fx.user_id}/tweets", "GET")
    [tweet] = world.fx.posts
    assert post.external_id == tweet.id and post.attempts == 1
    assert "OutcomeUnknown" in (post.last_error or "") and "found on twitter" in post.last_error
    assert world.count(AuditLog, AuditLog.post_id == post_id, AuditLog.action == "post.reconciled") == 1


def test_dropped_linkedin_connection_is_reconciled_with_the_author_feed(world: World) -> None:
    world.fl.drop_next(path="/rest/posts")  # the post is created, the connection closes
    post_id = world.schedule("linkedin", "Connection reset, post intact.")
    world.dispatch()

    post = world.wait_status(post_id, PostStatus.PUBLISHED)

    assert len(world.fl.requests_to("/rest/posts", "POST")) == 1
    [finder] = world.fl.requests_to("/rest/posts", "GET")
    assert finder.headers["x-restli-method"] == "FINDER"
    [created] = world.fl.posts
    assert post.external_id == created.urn


def test_unknown_outcome_not_found_or_not_checkable_goes_to_review_never_reposted(world: World) -> None:
    world.fx.drop_next(path="/2/tweets", process=False)  # lost on the way: nothing created
    world.fl.posts_readable = False  # the app may not read the member's posts
    world.fl.hang_next(path="/rest/posts")
    on_x = world.schedule("twitter", "Lost in transit.")
    on_linkedin = world.schedule("linkedin", "Created, but we cannot look.")
    world.dispatch()

    x_post = world.wait_status(on_x, PostStatus.NEEDS_REVIEW)
    li_post = world.wait_status(on_linkedin, PostStatus.NEEDS_REVIEW, timeout=20)

    assert x_post.review_reason == li_post.review_reason == ReviewReason.OUTCOME_UNKNOWN
    assert "not found on twitter" in (x_post.last_error or "")
    assert "no way to check" in (li_post.last_error or "")
    [finder] = world.fl.requests_to("/rest/posts", "GET")  # asked, and was refused (403)
    assert finder.headers["x-restli-method"] == "FINDER"
    # Nothing is re-sent, not even by the sweeper.
    assert sweep_stuck_posts(world.runtime, world.clock() + timedelta(hours=1)) == []
    time.sleep(1.0)
    assert len(tweet_posts(world.fx)) == 1 and world.fx.posts == []
    assert len(world.fl.requests_to("/rest/posts", "POST")) == 1 and len(world.fl.posts) == 1
    assert world.post(on_x).status == world.post(on_linkedin).status == PostStatus.NEEDS_REVIEW


# -- a worker killed mid-call -------------------------------------------------------------


@pytest.fixture
def slow_env(pg_url, platforms) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Patient platform calls (the hang outlasts the kill) and fast redelivery of dead workers'
    messages (so a restarted worker gets the killed one's message back)."""
    return worker_env(pg_url, redis_db_url(2), *platforms, PROVIDER_TIMEOUT_SECONDS="30",
                      REDIS_HEARTBEAT_TIMEOUT_MS="1000", REDIS_MAINTENANCE_CHANCE="1000000")


def test_worker_killed_during_the_platform_call_publishes_exactly_once(
        pg_engine, slow_env, platforms, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(slow_env["REDIS_URL"])
    client.flushdb()
    broker = build_broker(settings_from(slow_env))
    worker = start_worker(slow_env, tmp_path / "killed.log", threads=2)
    world = make_world(slow_env, platforms, broker, worker)
    try:
        world.fx.hang_next(path="/2/tweets", seconds=10)
        post_id = world.schedule("twitter", "Survives a SIGKILL mid-call.")
        (token, due), = world.dispatch().values()

        assert wait_for(lambda: tweet_posts(world.fx), 20), worker.stderr()
        worker.kill(signal.SIGKILL)
        assert world.post(post_id).status == PostStatus.PUBLISHING
        assert unacked(client) == 1  # the killed worker's message, never acknowledged
        assert len(world.fx.posts) == 1  # it is live on X; the worker never learnt so

        # The sweeper, once the publishing lease is over, asks X instead of re-posting.
        world.clock.offset = timedelta(minutes=3)
        assert sweep_stuck_posts(world.runtime, world.clock()) == []
        post = world.post(post_id)
        [tweet] = world.fx.posts
        assert post.status == PostStatus.PUBLISHED and post.external_id == tweet.id
        assert "stopped mid-call" in (post.last_error or "")
        world.clock.offset = timedelta(0)

        # A new worker gets the killed worker's message back (its heartbeat is 1 s stale), plus
        # an explicit resend; both are acknowledged only once handled, and both are skipped.
        worker = world.worker = start_worker(slow_env, tmp_path / "restarted.log", threads=2)
        broker.enqueue(publish_message([post_id], token, due))
        assert wait_for(lambda: unacked(client) == 0, 20), worker.stderr()
        time.sleep(0.5)

        assert len(tweet_posts(world.fx)) == 1
        assert [p.text for p in world.fx.posts] == ["Survives a SIGKILL mid-call."]
        post = world.post(post_id)
        assert post.status == PostStatus.PUBLISHED and post.external_id == tweet.id
        assert post.attempts == 1
    finally:
        worker.stop()
        broker.close()
        client.close()


# -- two workers racing -------------------------------------------------------------------


def test_two_workers_racing_on_one_post_publish_it_once(
        pg_engine, pg_url, platforms, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # One message at a time per worker: both processes hold a copy when the second comes.
    env = worker_env(pg_url, redis_db_url(2), *platforms, dramatiq_queue_prefetch="1")
    client = redis.Redis.from_url(env["REDIS_URL"])
    client.flushdb()
    broker = build_broker(settings_from(env))
    started = time.time()
    workers = [start_worker(env, tmp_path / f"racer{i}.log", threads=1) for i in range(2)]
    try:
        assert wait_ready(client, 2, started), workers[0].stderr() + workers[1].stderr()
        world = make_world(env, platforms, broker, workers[0])
        post_id = world.schedule("twitter", "Two workers, one tweet.", lead=timedelta(seconds=2))
        world.dispatch(copies=3)  # a duplicate delivery, and one more

        # Both processes hold a copy of the message while it waits for its second.
        holders = lambda: [key for key in client.keys("dramatiq:__acks__.*.posting")  # noqa: E731
                           if client.scard(key)]
        assert wait_for(lambda: len(holders()) == 2, 2), "the two workers did not both get a copy"

        post = world.wait_status(post_id, PostStatus.PUBLISHED)
        assert wait_for(lambda: unacked(client) == 0, 15), workers[1].stderr()
        time.sleep(0.5)
        assert len(tweet_posts(world.fx)) == 1
        [tweet] = world.fx.posts
        assert post.external_id == tweet.id and post.attempts == 1
    finally:
        for worker in workers:
            worker.stop()
        broker.close()
        client.close()
