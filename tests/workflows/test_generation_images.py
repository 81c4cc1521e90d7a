"""Generation with images, against the fake OpenAI server over a real socket.

The language model sees the user's matching images by id and alt text (never a URL or the
pixels) and may name one per post; the workflow attaches a named image only if it was offered.
With ``OPENAI_IMAGE_MODEL`` set, a post without a library image is illustrated by the Images
API: the bytes go through the library's checks, are stored as the user's, marked generated,
and a failure of any kind keeps the post without an image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from app.config import Settings
from app.crypto import generate_key
from app.media.library import add_image
from app.media.storage import LocalStorage
from app.models import AuditLog, ExecutionStatus, MediaItem, Post
from app.runtime import Runtime
from app.users import create_user
from app.workflows.generation import generate_for_user
from app.workflows.ticks import run_tick
from tests.fakes.openai import FakeOpenAI, requested_slots, valid_posts
from tests.media.images import image_bytes

SLOT = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
CDN = "https://cdn.example.test"
USER = {"timezone": "America/New_York", "preferred_platforms": ["twitter", "linkedin"],
        "posting_times": {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]},
        "content_frequency": 14, "topics": ["python"], "enable_autonomous_mode": True}
SNAKE_ALT = "A green python coiled on a branch"
CODE_ALT = "Python code on a laptop screen in a dark room"
TOMATO_ALT = "Ripe tomatoes on the vine"


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def make_runtime(pg_url: str, clock: Any, fake: FakeOpenAI, media_dir: Path, *, image_model: str | None) -> Runtime:
    settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),),
                        openai_api_key=fake.api_key, openai_base_url=fake.url, openai_model=fake.model,
                        openai_image_model=image_model, provider_timeout_seconds=5)
    runtime = Runtime.from_settings(settings, clock=clock)
    runtime.media = LocalStorage(media_dir, CDN)
    return runtime


@pytest.fixture
def runtime(pg_url, pg_engine, clock, openai_fake, tmp_path) -> Runtime:
    """OpenAI generation on the fake, no image model (the default)."""
    return make_runtime(pg_url, clock, openai_fake, tmp_path / "media", image_model=None)


@pytest.fixture
def illustrating_runtime(pg_url, pg_engine, clock, openai_fake, tmp_path) -> Runtime:
    """The same with ``OPENAI_IMAGE_MODEL`` set to the fake's image model."""
    return make_runtime(pg_url, clock, openai_fake, tmp_path / "media", image_model=openai_fake.image_model)


def add_user(runtime: Runtime, email: str, **overrides: Any) -> int:
    with runtime.session_factory() as session, session.begin():
        return create_user(session, email, {**USER, **overrides}).id


def add_library(runtime: Runtime, user_id: int, *images: tuple[str, str]) -> list[int]:
    with runtime.session_factory() as session, session.begin():
        return [add_image(session, runtime.media_storage, user_id, image_bytes(), alt_text=alt, tags=tags).id
                for alt, tags in images]


def run_day(runtime: Runtime) -> list[Any]:
    result = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="tick")
    executions = [generate_for_user(runtime, m.execution_id, message_id=f"gen-{m.execution_id}")
                  for m in result.intents]
    assert executions and all(e is not None and e.status == ExecutionStatus.SUCCEEDED for e in executions)
    return executions


def posts_of(runtime: Runtime, user_id: int) -> list[Post]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(Post).where(Post.user_id == user_id).order_by(Post.slot_at)))


def library_of(runtime: Runtime, user_id: int) -> list[MediaItem]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(MediaItem).where(MediaItem.user_id == user_id).order_by(MediaItem.id)))


def naming(media_id: int) -> Any:
    """A scripted model answer naming ``media_id`` for every post."""
    return lambda request: [{**post, "image_id": media_id} for post in valid_posts(request)]


# -- the model sees alt texts and names an offered image ------------------------------------------


def test_the_prompt_lists_matching_images_by_alt_text_and_the_named_one_is_attached(runtime, openai_fake):
    ada = add_user(runtime, "ada@example.com")
    snake, code, tomato = add_library(runtime, ada, (SNAKE_ALT, "python, snakes"), (CODE_ALT, "python"),
                                      (TOMATO_ALT, "gardening"))
    openai_fake.script(naming(snake))  # not the first offered
    run_day(runtime)

    (request,) = openai_fake.chat_requests
    wire = json.dumps(request)
    user_json = json.loads(request["messages"][1]["content"].split("\n", 1)[1])
    # The topic's images by id and alt text (equally matching: newest first); not the off-topic one.
    assert user_json["images"] == [{"id": code, "alt_text": CODE_ALT}, {"id": snake, "alt_text": SNAKE_ALT}]
    assert TOMATO_ALT not in wire
    # Never a URL or a storage key: the model reads descriptions, not pictures.
    with runtime.session_factory() as session:
        keys = [k for item in session.scalars(select(MediaItem)) for k in (item.storage_key, item.thumbnail_key)]
    assert keys and not any(key in wire for key in keys)
    assert "cdn.example.test" not in wire and "http" not in json.dumps(user_json["images"])
    schema = request["response_format"]["json_schema"]["schema"]["properties"]["posts"]["items"]
    assert schema["properties"]["image_id"]["enum"] == [code, snake, None]
    assert "image_alt_text" not in schema["properties"]  # no image model: no description asked

    posts = posts_of(runtime, ada)
    assert len(posts) == 4 and {p.media_id for p in posts} == {snake}
    # OPENAI_IMAGE_MODEL is off by default: no Images API call at all.
    assert openai_fake.image_requests == []


def test_an_image_id_not_offered_is_ignored(runtime, openai_fake):
    ada = add_user(runtime, "ada@example.com")
    bob = add_user(runtime, "bob@example.com", topics=["gardening"], enable_autonomous_mode=False)
    add_library(runtime, ada, (SNAKE_ALT, "python"))
    (tomato,) = add_library(runtime, ada, (TOMATO_ALT, "gardening"))  # Ada's, but not offered
    (bobs,) = add_library(runtime, bob, (CODE_ALT, "python"))  # another user's
    openai_fake.script(lambda request: [{**post, "image_id": [tomato, bobs, 999999, tomato][n]}
                                        for n, post in enumerate(valid_posts(request))])
    run_day(runtime)

    posts = posts_of(runtime, ada)
    # Not offered: the tag match decides instead, and the posts' texts (about open models)
    # share no tag with the library, so they stay text only; never the named image.
    assert len(posts) == 4 and all(p.media_id is None for p in posts)
    assert openai_fake.image_requests == []


def test_null_means_no_image_and_the_offline_tag_match_is_not_applied(runtime, openai_fake):
    ada = add_user(runtime, "ada@example.com")
    add_library(runtime, ada, (SNAKE_ALT, "python, open, models"))  # the tag match would pick it
    openai_fake.script(lambda request: [{**post, "image_id": None} for post in valid_posts(request)])
    run_day(runtime)
    posts = posts_of(runtime, ada)
    assert len(posts) == 4 and all(p.media_id is None for p in posts)


# -- OPENAI_IMAGE_MODEL ---------------------------------------------------------------------------


def test_the_image_model_illustrates_posts_without_a_library_image(illustrating_runtime, openai_fake, tmp_path):
    runtime = illustrating_runtime
    ada = add_user(runtime, "ada@example.com")
    add_library(runtime, ada, (TOMATO_ALT, "gardening"))  # nothing matches "python"
    run_day(runtime)

    (chat,) = openai_fake.chat_requests
    schema = chat["response_format"]["json_schema"]["schema"]["properties"]["posts"]["items"]
    assert "image_alt_text" in schema["required"] and "image_id" not in schema["properties"]
    images = openai_fake.image_requests
    assert len(images) == 4
    for request in images:
        assert request["model"] == openai_fake.image_model and request["size"] == "1024x1024"
        assert "response_format" not in request  # GPT image models refuse the legacy parameter
        assert request["prompt"].startswith("A bright lighthouse of stacked circuit boards")

    posts = posts_of(runtime, ada)
    generated = [item for item in library_of(runtime, ada) if item.generated]
    assert len(posts) == 4 and len(generated) == 4
    assert {p.media_id for p in posts} == {item.id for item in generated}
    for item in generated:
        assert item.alt_text == "A bright lighthouse of stacked circuit boards beside an open door."
        assert (item.width_px, item.height_px, item.content_type) == (1024, 1024, "image/png")
        assert (tmp_path / "media" / item.storage_key).is_file()
        assert (tmp_path / "media" / item.thumbnail_key).is_file()
    with runtime.session_factory() as session:
        audits = session.scalars(select(AuditLog).where(AuditLog.action == "post.generated")).all()
    assert len(audits) == 4 and all(a.details["image_generated"] is True for a in audits)


def test_a_library_match_is_preferred_to_a_generated_image(illustrating_runtime, openai_fake):
    runtime = illustrating_runtime
    ada = add_user(runtime, "ada@example.com")
    (snake,) = add_library(runtime, ada, (SNAKE_ALT, "python"))
    run_day(runtime)
    assert {p.media_id for p in posts_of(runtime, ada)} == {snake}
    assert openai_fake.image_requests == []


def test_a_refused_or_failed_image_keeps_the_post_without_one(illustrating_runtime, openai_fake, tmp_path):
    runtime = illustrating_runtime
    ada = add_user(runtime, "ada@example.com")
    openai_fake.script_images("refusal", "500", "not_an_image", "no_data")
    (execution,) = run_day(runtime)

    assert len(openai_fake.image_requests) == 4
    posts = posts_of(runtime, ada)
    assert len(posts) == 4 and all(p.media_id is None for p in posts)
    assert library_of(runtime, ada) == []
    stored = [p for p in (tmp_path / "media").rglob("*") if p.is_file()] if (tmp_path / "media").exists() else []
    assert stored == []  # the refused bytes left nothing behind
    failures = execution.counts["image_failures"]
    assert len(failures) == 4
    assert "safety system" in failures[0] and "500" in failures[1]
    assert "not a JPEG, PNG, WebP or GIF image" in failures[2] and "b64_json" in failures[3]
    with runtime.session_factory() as session:
        audits = session.scalars(select(AuditLog).where(AuditLog.action == "post.generated")
                                 .order_by(AuditLog.id)).all()
    assert [a.details["image_error"] for a in audits] == failures


def test_requested_slots_helper_still_reads_the_request(openai_fake):
    """The fake's parsing of a request with images stays the same for the slot list."""
    request = {"messages": [{"role": "user", "content": 'x {"slots": [{"platform": "twitter", "slot": "s"}], '
                                                        '"images": [{"id": 1, "alt_text": "a"}]}'}]}
    assert requested_slots(request) == [{"platform": "twitter", "slot": "s"}]
    assert valid_posts(request)[0]["image_id"] == 1


def test_past_the_runs_image_budget_posts_stay_text_only(illustrating_runtime, openai_fake, monkeypatch):
    from app.workflows import generation

    monkeypatch.setattr(generation, "IMAGE_BUDGET_SECONDS", 0.0)  # spent before the first call
    runtime = illustrating_runtime
    ada = add_user(runtime, "ada@example.com")
    (execution,) = run_day(runtime)
    assert openai_fake.image_requests == []
    posts = posts_of(runtime, ada)
    assert len(posts) == 4 and all(p.media_id is None for p in posts)
    assert len(execution.counts["image_failures"]) == 4
    assert all("were spent" in reason for reason in execution.counts["image_failures"])


# -- no transaction held across a provider call ---------------------------------------------------


class WatchingTransactions:
    """A provider's proxy that, at every call, asks PostgreSQL which other sessions of this
    database sit ``idle in transaction``: a run holding its transaction across the call shows up."""

    def __init__(self, inner: Any, engine: Any, seen: list[tuple[str, int]]) -> None:
        self.inner, self.engine, self.seen = inner, engine, seen

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in ("search", "generate"):
            return attribute

        def watched(*args: Any, **kwargs: Any) -> Any:
            with self.engine.connect() as connection:
                open_transactions = connection.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"))
            self.seen.append((f"{type(self.inner).__name__}.{name}", open_transactions))
            return attribute(*args, **kwargs)

        return watched


def test_no_transaction_is_open_while_a_provider_is_called(illustrating_runtime, openai_fake, pg_engine):
    """Research, the language model (over the fake's socket) and the Images API are each called
    while the run holds no transaction: no pooled connection or row lock waits on a provider."""
    runtime = illustrating_runtime
    ada = add_user(runtime, "ada@example.com")
    seen: list[tuple[str, int]] = []
    providers = runtime.providers
    providers.research = WatchingTransactions(providers.research, pg_engine, seen)
    providers.generation = WatchingTransactions(providers.generation, pg_engine, seen)
    providers.images = WatchingTransactions(providers.images, pg_engine, seen)
    (execution,) = run_day(runtime)

    assert execution.counts["generated"] == 4 and execution.counts["images_generated"] == 4
    calls = [name for name, _ in seen]
    assert calls.count("OpenAIImages.generate") == 4 and len(set(calls)) == 3, calls
    assert [(name, count) for name, count in seen if count] == []
    assert len(posts_of(runtime, ada)) == 4
