# ruff: noqa: F811 - the fixtures imported from test_publishing are used as arguments
"""Publishing a batch: the posts due at one second, one claim token, calls run concurrently.

Each post of a batch keeps the single-post guarantees (tests/workflows/test_publishing.py);
these tests show what batching adds: a constant number of statements whatever the batch's
size, independent outcomes per post, concurrent calls, our own limit applied per post, and
one refresh for an account whose token several concurrent calls found refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from app.intents import PublishPosts
from app.models import AuditLog, PostStatus, ReviewReason
from app.providers.errors import AuthError, OutcomeUnknown, PermanentError, RateLimited
from app.runtime import Runtime
from app.workflows.publish import RATE_LIMITED_RETRY, Attempt, Ready, RunCalls, publish_posts
from tests.workflows.test_publishing import (  # noqa: F401 - fixtures
    ScriptedPublisher,
    add_post,
    fake,
    load,
    queued,
    runtime,
    user_id,
)

TOKEN = "batch-token"


def batch_of(sessions: sessionmaker[Session], user_id: int, at: datetime, count: int) -> list[int]:
    return [queued(sessions, user_id, at, token=TOKEN, text=f"batch post {n}") for n in range(count)]


@pytest.fixture
def pool() -> Iterator[RunCalls]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        def run_calls(call: Any, items: Any) -> list[Attempt]:
            return list(executor.map(call, items))

        yield run_calls


def count_statements(sessions: sessionmaker[Session], work: Any) -> int:
    statements: list[str] = []
    engine = sessions.kw["bind"]
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return sum(s.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT")) for s in statements)


def test_a_batch_costs_the_same_statements_whatever_its_size(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    small = batch_of(sessions, user_id, now, 3)
    small_count = count_statements(sessions, lambda: publish_posts(runtime, small, TOKEN, now))
    large = [queued(sessions, user_id, now, token="large", text=f"large {n}") for n in range(40)]
    large_count = count_statements(sessions, lambda: publish_posts(runtime, large, "large", now))

    # claim, accounts, provider pause, record (UPDATE ... RETURNING and one audit INSERT).
    assert 0 < small_count == large_count <= 6
    assert len(fake.publish_calls) == 43
    with sessions() as session:
        published = session.scalars(select(AuditLog).where(AuditLog.action == "post.published")).all()
    assert sorted(row.post_id or 0 for row in published) == sorted(small + large)
    for post_id in small + large:
        post = load(sessions, post_id)
        assert (post.status, post.claim_token, post.attempts) == (PostStatus.PUBLISHED, None, 1)
    assert len({load(sessions, p).external_id for p in small + large}) == 43


def test_each_post_of_a_batch_has_its_own_outcome(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    ok, limited, refused, unknown, ok_too = batch_of(sessions, user_id, now, 5)
    reset = now + timedelta(minutes=3)
    fake.publish_script = [None, RateLimited("429", reset_at=reset), PermanentError("400 duplicate"),
                           OutcomeUnknown("read timeout after sending"), None]
    fake.find_script = [None]  # the unknown one is not found on the platform

    batch = publish_posts(runtime, [ok, limited, refused, unknown, ok_too], TOKEN, now)

    assert {p: o.kind for p, o in batch.outcomes.items()} == {
        ok: "published", limited: "retry", refused: "review", unknown: "review", ok_too: "published"}
    retried = load(sessions, limited)
    assert (retried.status, retried.queued_at) == (PostStatus.QUEUED, reset)
    assert batch.resend == [PublishPosts(retried.claim_token or "", reset, (limited,))]
    assert retried.claim_token != TOKEN
    assert load(sessions, refused).review_reason == ReviewReason.PERMANENT_ERROR
    assert load(sessions, unknown).review_reason == ReviewReason.OUTCOME_UNKNOWN
    assert [load(sessions, p).status for p in (ok, ok_too)] == [PostStatus.PUBLISHED] * 2
    assert len(fake.publish_calls) == 5 and len(fake.find_calls) == 1


def test_posts_the_token_no_longer_holds_are_skipped_and_the_rest_published(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    held = queued(sessions, user_id, now, token=TOKEN, text="held")
    superseded = queued(sessions, user_id, now, token="newer", text="superseded")
    cancelled = add_post(sessions, user_id, now, status=PostStatus.CANCELLED, token=None, text="cancelled")

    batch = publish_posts(runtime, [held, superseded, cancelled, 999_999], TOKEN, now)

    assert batch.outcomes[held].kind == "published"
    assert {p: batch.outcomes[p].detail for p in (superseded, cancelled, 999_999)} == {
        superseded: "the claim token was superseded", cancelled: "the post is cancelled",
        999_999: "no such post"}
    assert fake.publish_calls == [("access-1", "held")]
    # The same message delivered again publishes nothing.
    again = publish_posts(runtime, [held, superseded], TOKEN, now)
    assert {o.kind for o in again.outcomes.values()} == {"skipped"}
    assert len(fake.publish_calls) == 1


def test_a_batchs_calls_overlap_on_the_given_runner(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, pool: RunCalls) -> None:
    posts = batch_of(sessions, user_id, now, 8)
    everyone_in_flight = threading.Barrier(8, timeout=10)  # serial calls would break it

    def in_flight() -> None:
        everyone_in_flight.wait()

    fake.publish_script = [in_flight] * 8

    batch = publish_posts(runtime, posts, TOKEN, now, run_calls=pool)

    assert {o.kind for o in batch.outcomes.values()} == {"published"} and len(batch.outcomes) == 8
    assert len(fake.publish_calls) == 8
    assert not everyone_in_flight.broken


def test_our_own_limit_postpones_the_refused_posts_together_under_one_new_token(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime, clock,  # type: ignore[no-untyped-def]
        fake: ScriptedPublisher) -> None:
    posts = batch_of(sessions, user_id, now, 4)
    asked: list[list[tuple[str, int]]] = []

    def allow(targets: Sequence[tuple[str, int]]) -> list[bool]:
        asked.append(list(targets))
        return [True, False, True, False]

    batch = publish_posts(runtime, posts, TOKEN, now, allow=allow)

    assert asked == [[("twitter", user_id)] * 4]
    assert [batch.outcomes[p].kind for p in posts] == ["published", "retry", "published", "retry"]
    retry_at = clock.now + RATE_LIMITED_RETRY
    [later] = batch.resend
    assert (later.due_at, later.post_ids) == (retry_at, (posts[1], posts[3]))
    for post_id in (posts[1], posts[3]):
        post = load(sessions, post_id)
        assert (post.status, post.claim_token, post.queued_at, post.attempts) == (
            PostStatus.QUEUED, later.claim_token, retry_at, 0)  # not an attempt: nothing was called
    assert len(fake.publish_calls) == 2
    done = publish_posts(runtime, list(later.post_ids), later.claim_token, retry_at)
    assert {o.kind for o in done.outcomes.values()} == {"published"}


def test_concurrent_calls_refused_for_one_account_refresh_its_token_once(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher, pool: RunCalls) -> None:
    """X rotates refresh tokens: a second refresh with the old one would lock the user out."""
    posts = batch_of(sessions, user_id, now, 4)
    all_refused = threading.Barrier(4, timeout=10)

    def refused() -> None:
        all_refused.wait()  # the four calls are refused before any of them refreshes
        raise AuthError("401 token expired")

    fake.publish_script = [refused] * 4

    batch = publish_posts(runtime, posts, TOKEN, now, run_calls=pool)

    assert {o.kind for o in batch.outcomes.values()} == {"published"}
    assert fake.refresh_calls == ["refresh-1"]
    assert sorted(token for token, _ in fake.publish_calls) == ["access-1"] * 4 + ["access-2"] * 4
    with sessions() as session:
        refreshes = session.scalars(select(AuditLog).where(AuditLog.action == "account.token_refreshed")).all()
    assert len(refreshes) == 1


def test_ready_carries_what_a_call_needs_and_nothing_is_open_during_calls(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    """The platform calls run with no transaction open: a slow platform holds no row lock."""
    posts = batch_of(sessions, user_id, now, 2)
    seen: list[Ready] = []
    engine = sessions.kw["bind"]

    def run_calls(call: Any, items: Any) -> list[Attempt]:
        seen.extend(items)
        assert engine.pool.checkedout() == 0, "a connection is held across the platform calls"
        return [call(item) for item in items]

    publish_posts(runtime, posts, TOKEN, now, run_calls=run_calls)

    assert [r.claim.post_id for r in seen] == posts
    assert {r.creds.access_token for r in seen} == {"access-1"}
    assert all(r.claim.token == TOKEN and r.claim.attempts == 1 for r in seen)
