"""A user's daily run against the fakes produces posts whose texts pass the platform limits and
whose requests carry the documented headers and bodies (the fakes assert them).

Serper, OpenAI, X and LinkedIn are local fakes on real sockets; the runtime is built by
``Runtime.from_settings`` exactly as in production, so provider selection, the httpx and
openai clients, the shared research cache and the token vault all run for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.config import Settings
from app.crypto import generate_key
from app.intents import RunUserStep
from app.models import ExecutionStatus, Post, PostStatus
from app.providers.base import TokenSet
from app.providers.linkedin import LinkedInPublisher, to_little_text
from app.providers.openai_generation import OpenAIGeneration
from app.providers.serper import SerperResearch
from app.providers.x import XPublisher
from app.runtime import Runtime
from app.text_limits import fits_platform, platform_length, platform_limit
from app.users import connect_account, create_user
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.generation import generate_for_user
from app.workflows.publish import publish_posts
from app.workflows.ticks import run_tick
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.openai import FakeOpenAI, requested_slots, valid_posts
from tests.fakes.serper import FakeSerper
from tests.fakes.x import FakeX

SLOT = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
BRAND_VOICE = "bold, plain-spoken and a little dry"
TOPIC = "open-source AI"

ADA = {"timezone": "America/New_York", "preferred_platforms": ["twitter", "linkedin"],
       "posting_times": {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]},
       "content_frequency": 14, "topics": [TOPIC], "brand_voice": BRAND_VOICE,
       "enable_autonomous_mode": True}
#: The same topic and locale at other times (so the fakes' texts differ from Ada's).
BOB = {**ADA, "posting_times": {"twitter": ["11:00"], "linkedin": ["12:00"]}, "content_frequency": 7,
       "brand_voice": "casual"}

ADA_SLOTS = {
    ("twitter", datetime(2026, 11, 26, 14, 0, tzinfo=UTC)),
    ("linkedin", datetime(2026, 11, 26, 15, 0, tzinfo=UTC)),
    ("twitter", datetime(2026, 11, 26, 20, 30, tzinfo=UTC)),
    ("linkedin", datetime(2026, 11, 26, 22, 0, tzinfo=UTC)),
}
BOB_SLOTS = {
    ("twitter", datetime(2026, 11, 26, 16, 0, tzinfo=UTC)),
    ("linkedin", datetime(2026, 11, 26, 17, 0, tzinfo=UTC)),
}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSerper, FakeOpenAI, FakeX, FakeLinkedIn]]:
    with FakeSerper() as serper, FakeOpenAI() as openai_fake, FakeX() as x, FakeLinkedIn() as linkedin:
        yield serper, openai_fake, x, linkedin


@pytest.fixture
def real_runtime(pg_url, pg_engine, clock, fakes) -> Iterator[Runtime]:
    serper, openai_fake, x, linkedin = fakes
    settings = Settings(
        database_url=pg_url, token_encryption_keys=(generate_key(),),
        serper_api_key=serper.api_key, serper_base_url=serper.url,
        openai_api_key=openai_fake.api_key, openai_base_url=openai_fake.url, openai_model=openai_fake.model,
        x_api_base_url=x.base_url, x_client_id=x.client_id,
        linkedin_api_base_url=linkedin.base_url, linkedin_oauth_base_url=linkedin.base_url,
        linkedin_client_id=linkedin.client_id, linkedin_client_secret=linkedin.client_secret,
        provider_timeout_seconds=5,
    )
    runtime = Runtime.from_settings(settings, clock=clock)
    yield runtime
    for provider in (runtime.providers.research, runtime.providers.generation,
                     *runtime.providers.publishers.values()):
        close = getattr(provider, "close", None)  # the sandbox (platforms without a fake here) holds nothing
        if close is not None:
            close()


def add_user(runtime: Runtime, email: str, raw: dict, x: FakeX, linkedin: FakeLinkedIn) -> int:  # type: ignore[type-arg]
    with runtime.session_factory() as session, session.begin():
        user = create_user(session, email, raw)
        connect_account(session, runtime.vault, email, "twitter", TokenSet(x.access_token, x.refresh_token),
                        handle=x.username, external_id=x.user_id, now=SLOT)
        connect_account(session, runtime.vault, email, "linkedin",
                        TokenSet(linkedin.access_token, linkedin.refresh_token),
                        handle=linkedin.member_name, external_id=linkedin.member_urn, now=SLOT)
        return user.id


def stored_posts(runtime: Runtime) -> list[Post]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(Post).order_by(Post.scheduled_at, Post.id)))


def test_daily_run_against_the_fakes_generates_and_publishes_within_the_documented_contracts(
        real_runtime, clock, fakes):
    serper, openai_fake, x, linkedin = fakes
    runtime = real_runtime
    providers = runtime.providers
    assert isinstance(providers.research, SerperResearch)
    assert isinstance(providers.generation, OpenAIGeneration)
    assert isinstance(providers.publisher("twitter"), XPublisher)
    assert isinstance(providers.publisher("linkedin"), LinkedInPublisher)

    ada = add_user(runtime, "ada@example.com", ADA, x, linkedin)
    bob = add_user(runtime, "bob@example.com", BOB, x, linkedin)

    # -- generation: the 06:00 tick and one message per user ----------------------------------
    tick = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="tick-1")
    assert tick.claimed and len(tick.intents) == 2
    for message in tick.intents:
        assert message == RunUserStep("daily_generation", message.execution_id)
        execution = generate_for_user(runtime, message.execution_id, message_id=f"gen-{message.execution_id}")
        assert execution is not None
        assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
        assert execution.counts["empty_slots"] == 0 and execution.counts["research_items"] > 0

    posts = stored_posts(runtime)
    assert {(p.platform, p.slot_at) for p in posts if p.user_id == ada} == ADA_SLOTS
    assert {(p.platform, p.slot_at) for p in posts if p.user_id == bob} == BOB_SLOTS
    for post in posts:
        assert post.status == PostStatus.SCHEDULED and post.scheduled_at == post.slot_at
        assert fits_platform(post.platform, post.text), post.text
        limit = platform_limit(post.platform)
        assert 0 < platform_length(post.platform, post.text) <= limit

    # Serper: /search and /news once each, for both users (Bob's research came from the cache).
    assert serper.calls("search") == 1 and serper.calls("news") == 1
    for request in serper.server.requests:
        assert request.method == "POST" and request.headers["x-api-key"] == serper.api_key
        assert request.headers["content-type"].startswith("application/json")
        body = request.json()
        assert body["q"] == TOPIC and body["gl"] == "us" and body["hl"] == "en" and body["tbs"] == "qdr:d"

    # OpenAI: one strict json_schema request per user, the brand voice and research in the prompt.
    chats = openai_fake.chat_requests
    assert len(chats) == 2
    for chat, voice, slots in ((chats[0], BRAND_VOICE, ADA_SLOTS), (chats[1], "casual", BOB_SLOTS)):
        assert chat["model"] == openai_fake.model
        fmt = chat["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        user_message = next(m["content"] for m in chat["messages"] if m["role"] == "user")
        prompt = json.loads(user_message[user_message.index("{"):])
        assert prompt["brand_voice"] == voice and prompt["topics"] == [TOPIC]
        titles = {r["title"] for r in prompt["research"]}
        assert "Open-source AI models close the gap" in titles
        assert "Regulators publish AI transparency rules" in titles  # a /news result
        assert {(s["platform"], s["slot"]) for s in requested_slots(chat)} == {
            (p, at.strftime("%Y-%m-%dT%H:%M:%SZ")) for p, at in slots}
    for request in openai_fake.server.requests:
        assert request.headers["authorization"] == f"Bearer {openai_fake.api_key}"

    # -- publishing: at each post's time, dispatch then publish (no broker) -------------------
    published: dict[int, str] = {}
    for post in posts:
        if post.id in published:
            continue
        clock.now = post.scheduled_at
        dispatches = dispatch_due_posts(runtime, clock.now)
        assert post.id in {post_id for d in dispatches for post_id in d.post_ids}
        for dispatch in dispatches:
            batch = publish_posts(runtime, dispatch.post_ids, dispatch.claim_token, clock.now)
            for post_id, outcome in batch.outcomes.items():
                assert outcome.kind == "published", outcome
                published[post_id] = outcome.detail
    assert len(published) == len(posts)

    tweets = x.requests_to("/2/tweets", "POST")
    li_posts = linkedin.requests_to("/rest/posts", "POST")
    x_texts = [p.text for p in posts if p.platform == "twitter"]
    li_texts = [p.text for p in posts if p.platform == "linkedin"]
    assert len(tweets) == len(x_texts) and len(li_posts) == len(li_texts)
    for request, text in zip(tweets, x_texts, strict=True):
        assert request.headers["authorization"] == f"Bearer {x.access_token}"
        assert request.headers["content-type"].startswith("application/json")
        assert request.json == {"text": text}
    for request, text in zip(li_posts, li_texts, strict=True):
        assert request.headers["authorization"] == f"Bearer {linkedin.access_token}"
        assert request.headers["linkedin-version"] == runtime.settings.linkedin_version
        assert request.headers["x-restli-protocol-version"] == "2.0.0"
        body = request.json
        assert body["author"] == linkedin.member_urn
        assert body["commentary"] == to_little_text(text)
        assert "\\(" in body["commentary"] and "{hashtag|\\#|AI}" in body["commentary"]  # escaped; hashtags as tags
        assert body["visibility"] == "PUBLIC" and body["lifecycleState"] == "PUBLISHED"

    # The fakes hold every post, in full, and the rows carry the fakes' ids.
    x_ids = {p.text: p.id for p in x.posts}
    li_ids = {p.commentary: p.urn for p in linkedin.posts}
    for post in stored_posts(runtime):
        assert post.status == PostStatus.PUBLISHED and post.published_at == post.scheduled_at
        assert post.attempts == 1 and post.last_error is None
        if post.platform == "twitter":
            assert post.external_id == x_ids[post.text]
        else:
            assert post.external_id == li_ids[to_little_text(post.text)]
            assert post.external_id.startswith("urn:li:share:")
    assert len(x.posts) == len(x_texts) and len(linkedin.posts) == len(li_texts)


def test_over_limit_answer_is_asked_again_and_never_stored(real_runtime, clock, fakes):
    """The model writes tweets X would refuse: the slots are asked for again, then stored valid."""
    serper, openai_fake, x, linkedin = fakes
    runtime = real_runtime
    add_user(runtime, "ada@example.com", ADA, x, linkedin)
    openai_fake.script("over_limit")  # first answer: 299-character tweets, valid LinkedIn posts
    tick = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="t")
    (message,) = tick.intents
    execution = generate_for_user(runtime, message.execution_id, message_id="g")
    assert execution is not None and execution.status == ExecutionStatus.SUCCEEDED, execution.error
    chats = openai_fake.chat_requests
    assert len(chats) == 2
    # The retry asks only for the two X slots, telling the model why.
    assert {s["platform"] for s in requested_slots(chats[1])} == {"twitter"}
    assert "weighted characters" in chats[1]["messages"][-1]["content"]
    posts = stored_posts(runtime)
    assert {(p.platform, p.slot_at) for p in posts} == ADA_SLOTS
    assert all(fits_platform(p.platform, p.text) for p in posts)


def test_generation_failure_against_the_fake_is_recorded_and_nothing_is_posted(real_runtime, clock, fakes):
    serper, openai_fake, x, linkedin = fakes
    runtime = real_runtime
    add_user(runtime, "ada@example.com", ADA, x, linkedin)
    openai_fake.script("refusal", "refusal", "refusal")
    tick = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="t")
    (message,) = tick.intents
    execution = generate_for_user(runtime, message.execution_id, message_id="g")
    assert execution is not None and execution.status == ExecutionStatus.FAILED
    assert execution.error is not None and "GenerationError" in execution.error and "refused" in execution.error
    assert len(openai_fake.chat_requests) == 3
    assert stored_posts(runtime) == []
    clock.now = SLOT + timedelta(hours=20)
    assert dispatch_due_posts(runtime, clock.now) == []
    assert x.requests == [] and linkedin.requests == []


def test_a_model_writing_an_over_long_topic_does_not_fail_the_day(real_runtime, clock, fakes):
    serper, openai_fake, x, linkedin = fakes
    runtime = real_runtime
    add_user(runtime, "ada@example.com", ADA, x, linkedin)
    openai_fake.script(lambda request: [{**p, "topic": "open models " * 30} for p in valid_posts(request)])
    tick = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="t")
    (message,) = tick.intents
    execution = generate_for_user(runtime, message.execution_id, message_id="g")
    assert execution is not None and execution.status == ExecutionStatus.SUCCEEDED, execution.error
    assert {(p.platform, p.slot_at) for p in stored_posts(runtime)} == ADA_SLOTS
