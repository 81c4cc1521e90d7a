# ruff: noqa: F811 - the fixtures imported from test_publishing are used as arguments
"""The minute's recovery on PostgreSQL: lost messages re-sent, interrupted publishes reconciled.

The broker's answer ("is this message alive?") is a plain set here; the Redis implementation
is tested against real workers in tests/e2e/test_recovery.py.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.crypto import TokenVault, generate_key
from app.intents import PublishPosts
from app.models import AccountStatus, LateReason, PlatformAccount, PostStatus, ReviewReason
from app.providers.base import PublishResult
from app.runtime import Runtime
from app.workflows.dispatch import DISPATCH_DUE_POSTS
from app.workflows.publish import publish_post
from app.workflows.recovery import DEFAULT_PUBLISHING_BACKSTOP, recover_posts
from app.workflows.ticks import run_tick
from tests.workflows.test_publishing import (  # noqa: F401 - fixtures
    ScriptedPublisher,
    account,
    actions,
    add_post,
    audit_details,
    fake,
    load,
    queued,
    runtime,
    user_id,
)

GRACE = timedelta(seconds=10)


class Alive:
    """A MessageProbe answering from a set of live message ids, recording what it was asked."""

    def __init__(self, *alive: str) -> None:
        self.ids = set(alive)
        self.asked: list[set[str]] = []

    def alive(self, message_ids: Collection[str]) -> set[str]:
        self.asked.append(set(message_ids))
        return self.ids & set(message_ids)


def test_a_queued_post_whose_message_is_gone_is_resent_at_once_under_a_new_token(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    lost = queued(sessions, user_id, now - timedelta(seconds=20), token="lost")

    recovery = recover_posts(runtime, now, Alive())

    [resent] = recovery.resent
    assert resent.post_ids == (lost,) and resent.claim_token != "lost" and resent.due_at == now
    assert recovery.counts() == {"resent": 1, "reconciled": 0, "reviewed": 0, "alive": 0}
    post = load(sessions, lost)
    assert (post.status, post.claim_token) == (PostStatus.QUEUED, resent.claim_token)
    assert (post.late_reason, post.late_since) == (LateReason.RESENT, now)
    assert publish_post(runtime, lost, "lost", now).kind == "skipped"  # the old message, if it runs
    assert publish_post(runtime, lost, resent.claim_token, now).kind == "published"
    assert len(fake.publish_calls) == 1


def test_a_busy_workers_message_is_left_alone_however_late(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    waiting = queued(sessions, user_id, now - timedelta(minutes=5), token="held")
    probe = Alive("held")

    recovery = recover_posts(runtime, now, probe)

    assert recovery.resent == [] and recovery.alive == 1
    assert probe.asked == [{"held"}]
    assert load(sessions, waiting).claim_token == "held"


def test_a_post_claimed_ahead_whose_message_vanished_is_resent_for_its_own_second(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    due = now + timedelta(seconds=90)
    post_id = add_post(sessions, user_id, due, status=PostStatus.QUEUED, token="flushed",
                       queued_at=now - GRACE - timedelta(seconds=1))
    just_sent = add_post(sessions, user_id, due, status=PostStatus.QUEUED, token="in-transit",
                         queued_at=now - GRACE + timedelta(seconds=1), text="other")

    [resent] = recover_posts(runtime, now, Alive()).resent

    assert (resent.post_ids, resent.due_at) == ((post_id,), due)  # never early
    assert load(sessions, just_sent).claim_token == "in-transit"  # within the grace: not judged yet


def test_a_post_waiting_for_a_retry_is_judged_from_its_retry_time(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    post_id = add_post(sessions, user_id, now - timedelta(minutes=2), status=PostStatus.QUEUED,
                       token="retry", queued_at=now + timedelta(seconds=30))
    assert recover_posts(runtime, now, Alive()).resent == []
    [resent] = recover_posts(runtime, now + timedelta(seconds=41), Alive()).resent
    assert resent.post_ids == (post_id,)


def test_a_lost_post_past_the_stale_grace_goes_to_review(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    post_id = queued(sessions, user_id, now - timedelta(minutes=61))
    recovery = recover_posts(runtime, now, Alive())
    assert recovery.resent == [] and recovery.reviewed == 1
    post = load(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.STALE)


def test_an_interrupted_publish_is_recorded_with_the_platforms_creation_time(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    scheduled = now - timedelta(seconds=40)
    went_out = scheduled + timedelta(seconds=1, milliseconds=250)
    dead = add_post(sessions, user_id, scheduled, status=PostStatus.PUBLISHING, token="dead",
                    publish_started_at=scheduled, attempts=1)
    busy = add_post(sessions, user_id, scheduled, status=PostStatus.PUBLISHING, token="busy",
                    publish_started_at=scheduled, attempts=1, text="slow call")
    fake.find_script = [PublishResult("x-1", published_at=went_out)]

    recovery = recover_posts(runtime, now, Alive("busy"))

    assert recovery.counts() == {"resent": 0, "reconciled": 1, "reviewed": 0, "alive": 1}
    assert fake.publish_calls == [] and len(fake.find_calls) == 1
    post = load(sessions, dead)
    assert (post.status, post.external_id, post.published_at) == (PostStatus.PUBLISHED, "x-1", went_out)
    assert post.late_reason == LateReason.RECONCILING and post.late_since == now
    assert audit_details(sessions, dead, "post.reconciled")["lateness_seconds"] == 1.25
    assert load(sessions, busy).status == PostStatus.PUBLISHING


def test_an_interrupted_publish_whose_token_cannot_be_decrypted_flags_the_account(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    with sessions.begin() as session:
        row = session.scalar(select(PlatformAccount))
        assert row is not None
        row.access_token_encrypted = TokenVault([generate_key()]).encrypt("access-1")
    started = now - timedelta(seconds=40)
    post_id = add_post(sessions, user_id, started, status=PostStatus.PUBLISHING, token="dead",
                       publish_started_at=started, attempts=1)

    assert recover_posts(runtime, now, Alive()).reviewed == 1

    assert fake.find_calls == []  # nothing to ask the platform with
    post = load(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.OUTCOME_UNKNOWN)
    assert account(sessions, user_id).status == AccountStatus.NEEDS_REAUTH


def test_a_publish_still_alive_past_the_actors_time_limit_is_reconciled_anyway(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    started = now - DEFAULT_PUBLISHING_BACKSTOP - timedelta(seconds=1)
    post_id = add_post(sessions, user_id, started, status=PostStatus.PUBLISHING, token="stuck",
                       publish_started_at=started, attempts=1)
    fake.find_script = [None]
    assert recover_posts(runtime, now, Alive("stuck")).reviewed == 1
    post = load(sessions, post_id)
    assert (post.status, post.review_reason) == (PostStatus.NEEDS_REVIEW, ReviewReason.OUTCOME_UNKNOWN)


def test_a_publish_within_the_grace_is_not_reconciled_even_without_its_message(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime,
        fake: ScriptedPublisher) -> None:
    post_id = add_post(sessions, user_id, now, status=PostStatus.PUBLISHING, token="fresh",
                       publish_started_at=now - GRACE + timedelta(seconds=1), attempts=1)
    assert recover_posts(runtime, now, Alive()).counts()["reconciled"] == 0
    assert fake.find_calls == [] and load(sessions, post_id).status == PostStatus.PUBLISHING


def test_a_redelivered_tick_resends_what_it_claimed_and_never_sent(
        runtime: Runtime, sessions: sessionmaker[Session], user_id: int, now: datetime, clock) -> None:  # type: ignore[no-untyped-def]
    due = [add_post(sessions, user_id, now + timedelta(seconds=30 + i), text=f"p{i}") for i in range(3)]
    first = run_tick(runtime, DISPATCH_DUE_POSTS.name, now, trigger="periodic", message_id="m1",
                     messages=Alive())
    claimed = {p: i.claim_token for i in first.intents if isinstance(i, PublishPosts) for p in i.post_ids}
    assert sorted(claimed) == due
    # The worker died before sending: the broker has none of these messages. Redelivered 2 s later:
    clock.now = now + timedelta(seconds=2)
    again = run_tick(runtime, DISPATCH_DUE_POSTS.name, now, trigger="periodic", message_id="m1",
                     messages=Alive())
    resent = {p: i for i in again.intents if isinstance(i, PublishPosts) for p in i.post_ids}
    assert sorted(resent) == due
    assert all(resent[p].claim_token != claimed[p] for p in due)
    assert [resent[p].due_at for p in due] == [now + timedelta(seconds=30 + i) for i in range(3)]
    # A second scheduler's copy of the same slot does nothing.
    assert not run_tick(runtime, DISPATCH_DUE_POSTS.name, now, trigger="periodic", message_id="m2",
                        messages=Alive()).claimed


def test_the_minute_job_recovers_before_it_claims() -> None:
    assert [step.name for step in DISPATCH_DUE_POSTS.steps] == [
        "recover_lost_posts", "claim_due_posts", "catch_up_missed_slots"]
