"""The Images API client against the fake over a real socket, and the fake's documented checks."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from app.config import Settings
from app.errors import ConfigError
from app.providers.base import ContentBrief, ImageCandidate, PostSlot
from app.providers.errors import PermanentError, TemporaryError
from app.providers.openai_images import OpenAIImages
from app.providers.openai_prompt import build_messages, parse_answer, response_format, slot_key
from app.providers.registry import build_providers
from tests.fakes.openai import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def images(fake: FakeOpenAI) -> Iterator[OpenAIImages]:
    client = OpenAIImages(fake.api_key, fake.url, fake.image_model, timeout=5)
    yield client
    client.close()


def test_an_image_comes_back_as_png_bytes(images, fake):
    data = images.generate("A lighthouse made of circuit boards")
    assert data.startswith(b"\x89PNG")
    (request,) = fake.image_requests
    assert request == {"model": fake.image_model, "prompt": "A lighthouse made of circuit boards", "n": 1,
                       "size": "1024x1024"}


@pytest.mark.parametrize(("mode", "error", "words"), [
    ("refusal", PermanentError, "safety system"),
    ("500", TemporaryError, "server error"),
    ("no_data", PermanentError, "b64_json"),
])
def test_failures_are_classified(images, fake, mode, error, words):
    fake.script_images(mode)
    with pytest.raises(error, match=words):
        images.generate("A lighthouse")


def test_a_hanging_image_call_times_out_as_temporary(fake):
    client = OpenAIImages(fake.api_key, fake.url, fake.image_model, timeout=0.5)
    fake.script_images("hang")
    try:
        with pytest.raises(TemporaryError, match="timed out"):
            client.generate("A lighthouse")
    finally:
        client.close()


def test_the_fake_enforces_the_documented_request(fake):
    client = openai.OpenAI(api_key=fake.api_key, base_url=fake.url, max_retries=0, timeout=5)
    try:
        with pytest.raises(openai.BadRequestError, match="string too long"):
            client.images.generate(model=fake.image_model, prompt="x" * 32001)
        with pytest.raises(openai.BadRequestError, match="Supported values"):
            client.images.generate(model=fake.image_model, prompt="a cat", size="1000x1000")  # not multiples of 16
        with pytest.raises(openai.BadRequestError, match="Supported values"):
            client.images.generate(model=fake.image_model, prompt="a cat", size="3840x960")  # beyond 3:1
        with pytest.raises(openai.BadRequestError, match="model parameter"):
            client.images.generate(prompt="a cat")
        with pytest.raises(openai.BadRequestError, match="response_format"):
            client.images.generate(model=fake.image_model, prompt="a cat", response_format="b64_json")
        answer = client.images.generate(model=fake.image_model, prompt="a cat", size="1536x864")
        assert answer.data and answer.data[0].b64_json
    finally:
        client.close()


def test_the_image_model_is_off_by_default_and_needs_the_key():
    assert Settings().openai_image_model is None
    assert Settings.from_env({"OPENAI_API_KEY": "k", "OPENAI_IMAGE_MODEL": "gpt-image-2"}).openai_image_model == "gpt-image-2"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        Settings.from_env({"OPENAI_IMAGE_MODEL": "gpt-image-2"})


def test_the_registry_builds_the_image_provider_only_when_configured(fake):
    off = build_providers(Settings(openai_api_key=fake.api_key, openai_base_url=fake.url), None)  # type: ignore[arg-type]
    assert off.images is None
    on = build_providers(Settings(openai_api_key=fake.api_key, openai_base_url=fake.url,
                                  openai_image_model=fake.image_model), None)  # type: ignore[arg-type]
    assert isinstance(on.images, OpenAIImages) and on.images.model == fake.image_model


def test_the_prompt_names_images_by_alt_text_in_every_output_mode():
    from datetime import UTC, datetime

    slot = PostSlot("twitter", datetime(2026, 11, 26, 14, tzinfo=UTC))
    brief = ContentBrief(slots=[slot], brand_voice="plain", creativity_level=0.5, topics=["python"], research=[],
                         images=[ImageCandidate(7, "A python on a branch")], describe_images=True)
    for mode in ("json_schema", "json_object", "prompt"):
        text = str(build_messages(brief, [slot], output_mode=mode))
        assert "A python on a branch" in text and '"image_id"' in text and '"image_alt_text"' in text
    item = response_format([slot], brief)["json_schema"]["schema"]["properties"]["posts"]["items"]
    assert item["required"] == ["platform", "slot", "text", "topic", "image_id", "image_alt_text"]


def test_an_answer_naming_an_image_is_read_but_a_boolean_is_not_an_id():
    from datetime import UTC, datetime
    from types import SimpleNamespace as NS

    slot = PostSlot("twitter", datetime(2026, 11, 26, 14, tzinfo=UTC))
    key = slot_key(slot.slot_at)

    def completion(post: dict) -> NS:
        import json

        message = NS(content=json.dumps({"posts": [post]}), refusal=None)
        return NS(choices=[NS(message=message, finish_reason="stop")])

    base = {"platform": "twitter", "slot": key, "text": "Hello", "topic": "python"}
    named = parse_answer(completion({**base, "image_id": 7, "image_alt_text": " A  python "}),
                         {("twitter", key): slot}).accepted[("twitter", key)]
    assert (named.media_id, named.image_chosen, named.image_description) == (7, True, "A python")
    boolean = parse_answer(completion({**base, "image_id": True}), {("twitter", key): slot}).accepted[("twitter", key)]
    assert boolean.media_id is None and boolean.image_chosen
    silent = parse_answer(completion(base), {("twitter", key): slot}).accepted[("twitter", key)]
    assert silent.media_id is None and not silent.image_chosen

