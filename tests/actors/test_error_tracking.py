"""Sentry as operators read it, through sentry-sdk's real HTTP transport and a local ingest.

A generation retried and given up is one error event (its earlier attempts breadcrumbs), tagged
with the ids it concerns and small; a post that cannot be published is one event, grouped by
platform and reason; no request to a provider carries Sentry's ``sentry-trace`` or ``baggage``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import pytest
import sentry_sdk
from dramatiq import Worker
from sqlalchemy.orm import Session, sessionmaker

import actors
from actors.messages import PER_USER_ACTORS
from app.clock import SettableClock
from app.config import Settings
from app.crypto import generate_key
from app.error_tracking import init_error_tracking
from app.models import PostStatus, ReviewReason
from app.runtime import Runtime, set_runtime
from app.workflows.publish import publish_post
from app.workflows.ticks import run_tick
from tests.factories import make_users
from tests.fakes.openai import DEFAULT_API_KEY, DEFAULT_MODEL, FakeOpenAI
from tests.fakes.platform import unused_base_url
from tests.fakes.sentry import FakeSentry
from tests.fakes.x import FakeX
from tests.workflows.test_generation import SLOT, run_day
from tests.workflows.test_publish_operator_problems import (  # noqa: F401 - fixtures
    linkedin,
    load_post,
    queued,
    runtime,
    user_id,
    x,
)

#: Headers Sentry adds to outgoing requests when it propagates a trace.
TRACE_HEADERS = ("sentry-trace", "baggage")
#: An event this size or under is never trimmed by the ingest (its limit is 1 MB; ours is far under).
SMALL_EVENT_BYTES = 64 * 1024
OPENAI_KEY = "sk-test-never-in-an-event-0123456789"


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    """Sentry initialised as production does (``init_error_tracking``), sending to a local ingest."""
    with FakeSentry() as fake:
        yield fake
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init()  # no DSN: inactive again for the other tests


def flushed(fake: FakeSentry) -> list[dict[str, Any]]:
    sentry_sdk.flush(timeout=5)
    return fake.events


def test_a_generation_failing_three_times_then_given_up_is_one_small_tagged_event(
        sentry: FakeSentry, pg_url: str, pg_engine: object, clock: SettableClock) -> None:
    settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),), sentry_dsn=sentry.dsn,
                        openai_api_key=OPENAI_KEY, openai_base_url=unused_base_url() + "/v1")
    world = Runtime.from_settings(settings, clock=clock)
    [user] = make_users(world, 1)
    [intent] = run_tick(world, "daily_generation", SLOT, trigger="periodic", message_id="tick").intents
    broker = actors.setup(settings)
    set_runtime(world)
    actor = broker.get_actor(PER_USER_ACTORS["daily_generation"])
    worker = Worker(broker, worker_timeout=100)
    worker.start()
    try:
        # Three attempts (two retries), a few ms apart instead of the actor's 30 s backoff.
        message = actor.send_with_options(args=(intent.execution_id,), max_retries=2, min_backoff=1,
                                          max_backoff=10)
        broker.join(actor.queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
        set_runtime(None)
        dramatiq.set_broker(actors.setup(Settings()))

    events = flushed(sentry)
    assert len(events) == 1, [e.get("message") or e.get("exception") for e in events]
    [event] = events
    assert event["level"] == "error"
    assert event["exception"]["values"][-1]["type"] == "TemporaryError"
    assert event["tags"] == {
        "actor": actor.actor_name, "queue": "autonomous", "message_id": message.message_id,
        "job": "daily_generation per user", "slot": SLOT.isoformat(), "user_id": str(user),
        "execution_id": str(intent.execution_id), "attempt": "3", "final": "retries_exhausted",
    }
    assert event["user"] == {"id": str(user)}
    retries = [b["message"] for b in event["breadcrumbs"]["values"] if b.get("category") == "retry"]
    assert [r.split(":", 1)[0] for r in retries] == ["attempt 1 failed", "attempt 2 failed"]
    assert all("OpenAI unreachable" in r for r in retries)
    assert event["contexts"]["message"]["attempt"] == 3
    text = json.dumps(event)
    # Dramatiq's traceback (in the message's options) is nowhere: not in a context, not as text.
    assert "Traceback (most recent call last)" not in text
    assert "traceback" not in json.dumps([event["contexts"], event.get("extra", {})]).lower()
    assert len(text.encode()) < SMALL_EVENT_BYTES
    assert OPENAI_KEY.encode() not in sentry.raw()


def test_a_successful_generation_sends_no_trace_header_to_openai(
        sentry: FakeSentry, pg_url: str, pg_engine: object, clock: SettableClock) -> None:
    with FakeOpenAI() as openai:
        settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),), sentry_dsn=sentry.dsn,
                            openai_api_key=DEFAULT_API_KEY, openai_base_url=openai.url, openai_model=DEFAULT_MODEL)
        assert init_error_tracking(settings)
        world = Runtime.from_settings(settings, clock=clock)
        make_users(world, 1)
        executions = run_day(world)
        assert [e.status for e in executions] == ["succeeded"]
        requests = openai.server.requests
    assert requests, "generation called OpenAI"
    assert [r.path for r in requests if set(TRACE_HEADERS) & set(r.headers)] == []
    assert flushed(sentry) == []


def test_posts_that_cannot_be_published_are_one_event_each_grouped_by_platform_and_reason(
        sentry: FakeSentry, runtime: Runtime, sessions: sessionmaker[Session], x: FakeX,  # noqa: F811
        user_id: int, now: datetime) -> None:  # noqa: F811
    assert init_error_tracking(Settings(sentry_dsn=sentry.dsn))
    # 1. Unknown outcome: the connection drops before X answers, and the lookup finds nothing.
    x.drop_next(method="POST", path="/2/tweets", process=False)
    unknown = queued(sessions, user_id, "twitter", now, token="t1", text="First post, never confirmed")
    assert publish_post(runtime, unknown, "t1", now).kind == "review"
    # 2. A second unknown outcome: same platform and reason, so the same group.
    x.drop_next(method="POST", path="/2/tweets", process=False)
    again = queued(sessions, user_id, "twitter", now + timedelta(seconds=2), token="t3",
                   text="Third post, never confirmed either")
    assert publish_post(runtime, again, "t3", now).kind == "review"

    # 3. Last (the account then needs re-authorising): a 401 whose refresh is refused.
    x.respond_next(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                         "detail": "Unauthorized"}, method="POST", path="/2/tweets")
    x.respond_next(400, {"error": "invalid_request", "error_description": "Value passed for the token was invalid."},
                   method="POST", path="/2/oauth2/token")
    refused = queued(sessions, user_id, "twitter", now + timedelta(seconds=1), token="t2",
                     text="Second post, token revoked")
    assert publish_post(runtime, refused, "t2", now).kind == "review"
    reasons = {post: load_post(sessions, post).review_reason for post in (unknown, refused, again)}
    assert reasons == {unknown: ReviewReason.OUTCOME_UNKNOWN, refused: ReviewReason.NEEDS_REAUTH,
                       again: ReviewReason.OUTCOME_UNKNOWN}
    assert {load_post(sessions, p).status for p in reasons} == {PostStatus.NEEDS_REVIEW}
    events = flushed(sentry)
    assert sorted(int(e["tags"]["post_id"]) for e in events) == sorted(reasons)
    for event in events:
        post = int(event["tags"]["post_id"])
        assert event["fingerprint"] == ["publish-failure", "twitter", reasons[post]]
        assert event["tags"]["platform"] == "twitter" and event["tags"]["reason"] == reasons[post]
        assert event["user"] == {"id": str(user_id)}
        assert "never confirmed" not in json.dumps(event) and "token revoked" not in json.dumps(event)
    raw = sentry.raw()
    assert x.access_token.encode() not in raw and x.refresh_token.encode() not in raw
    # Create, lookup and token calls were all made, none with a trace header.
    paths = {r.path.split("?")[0] for r in x.requests}
    assert {"/2/tweets", "/2/oauth2/token"} <= paths and any(p.startswith("/2/users/") for p in paths), paths
    assert [r.path for r in x.requests if set(TRACE_HEADERS) & {k.lower() for k in r.headers}] == []


def test_an_unexpected_error_retried_then_given_up_is_one_event_not_one_per_attempt(sentry: FakeSentry) -> None:
    """Dramatiq logs every failed attempt at ERROR: those records stay breadcrumbs."""
    broker = actors.setup(Settings(sentry_dsn=sentry.dsn))
    attempts: list[int] = []

    def explodes(post_id: int) -> None:
        attempts.append(post_id)
        raise RuntimeError(f"boom {len(attempts)}")

    actor = dramatiq.actor(broker=broker, actor_name="explodes", queue_name="legacy", max_retries=2,
                           min_backoff=1, max_backoff=10)(explodes)
    worker = Worker(broker, worker_timeout=100)
    worker.start()
    try:
        actor.send(7)
        broker.join(actor.queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
        dramatiq.set_broker(actors.setup(Settings()))
    assert attempts == [7, 7, 7]
    [event] = flushed(sentry)
    assert event["exception"]["values"][-1]["value"] == "boom 3"
    assert (event["tags"]["actor"], event["tags"]["attempt"], event["tags"]["final"]) == ("explodes", "3",
                                                                                          "retries_exhausted")
    retries = [b["message"] for b in event["breadcrumbs"]["values"] if b.get("category") == "retry"]
    assert [r.split(": ", 1)[1].startswith("RuntimeError: boom") for r in retries] == [True, True]
