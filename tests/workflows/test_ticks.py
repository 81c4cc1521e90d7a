"""`autopilot run` on the in-process broker: at start-up, work whose message died with the
previous process is re-sent at once, and a post re-sent early still waits for its second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.intents import PublishPosts, RunSlot, RunUserStep
from app.models import Post, PostStatus
from app.workflows.ticks import recovery_intents, run_tick
from tests.factories import make_users

SLOT = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def _queued_post(runtime, user_id: int, due: datetime) -> int:
    with runtime.session_factory() as session, session.begin():
        post = Post(user_id=user_id, platform="twitter", text="hello", scheduled_at=due,
                    status=PostStatus.QUEUED, claim_token="old", queued_at=due - timedelta(minutes=1))
        session.add(post)
        session.flush()
        return post.id


def test_lost_in_memory_messages_are_resent_at_start_up(runtime, clock):
    (user_id,) = make_users(runtime, 1)
    fan_out = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="m")
    clock.now = SLOT + timedelta(minutes=1)
    post_id = _queued_post(runtime, user_id, clock.now + timedelta(seconds=50))

    intents = recovery_intents(runtime, clock.now, messages_lost=True)

    publish = [i for i in intents if isinstance(i, PublishPosts)]
    assert [(i.post_ids, i.due_at) for i in publish] == [((post_id,), clock.now + timedelta(seconds=50))]
    assert publish[0].claim_token != "old"  # a new claim token: the lost message is void
    assert {i for i in intents if isinstance(i, RunUserStep)} == set(fan_out.intents)


def test_with_redis_nothing_fresh_is_resent(runtime, clock):
    (user_id,) = make_users(runtime, 1)
    run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="m")
    clock.now = SLOT + timedelta(minutes=1)
    _queued_post(runtime, user_id, clock.now + timedelta(seconds=50))
    intents = recovery_intents(runtime, clock.now, messages_lost=False)
    # Only the missed 02:00 metrics slot is caught up; the fresh post and execution wait.
    assert intents == [RunSlot("metrics_collection", SLOT.replace(hour=2))]
    with runtime.session_factory() as session:
        assert session.scalar(select(Post.claim_token)) == "old"
