"""OpenAIGeneration through the real openai SDK against a fake Chat Completions server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.providers.base import ContentBrief, PostSlot, ResearchItem
from app.providers.errors import (
    AuthError,
    GenerationError,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.providers.openai_generation import OpenAIGeneration
from app.providers.openai_prompt import build_messages, slot_key, temperature_for
from app.text_limits import fits_platform
from tests.fakes.openai import DEFAULT_API_KEY, DEFAULT_MODEL, FakeOpenAI, requested_slots

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
X_SLOT = PostSlot("twitter", NOW + timedelta(hours=3))
LI_SLOT = PostSlot("linkedin", NOW + timedelta(hours=4))
X_SLOT_2 = PostSlot("twitter", NOW + timedelta(hours=11))


def make_brief(**overrides: Any) -> ContentBrief:
    values: dict[str, Any] = {
        "slots": [X_SLOT, LI_SLOT, X_SLOT_2],
        "brand_voice": "playful but precise",
        "creativity_level": 0.5,
        "topics": ["open-source AI", "developer tools"],
        "research": [
            ResearchItem(
                "Open models close the gap",
                "https://example.org/open",
                "Benchmarks within a few points.",
                NOW,
                "Example Times",
            )
        ],
        "recent_posts": ["Yesterday we talked about GPUs."],
        "insights": ["Questions at the end doubled comments."],
        "language": "fr",
    }
    values.update(overrides)
    return ContentBrief(**values)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def make_provider(fake: FakeOpenAI, **kwargs: Any) -> OpenAIGeneration:
    kwargs.setdefault("timeout", 2.0)
    api_key = kwargs.pop("api_key", DEFAULT_API_KEY)
    model = kwargs.pop("model", DEFAULT_MODEL)
    return OpenAIGeneration(api_key, fake.url, model, **kwargs)


def slots_of(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["platform"], s["slot"]) for s in requested_slots(request)]


ALL_SLOTS = [(s.platform, slot_key(s.slot_at)) for s in (X_SLOT, LI_SLOT, X_SLOT_2)]


# --- success ---------------------------------------------------------------------------------


def test_one_request_writes_a_valid_draft_per_slot_over_the_socket(fake: FakeOpenAI) -> None:
    drafts = make_provider(fake).generate(make_brief())

    assert [(d.platform, d.slot_at) for d in drafts] == [
        (s.platform, s.slot_at) for s in (X_SLOT, LI_SLOT, X_SLOT_2)
    ]
    assert all(fits_platform(d.platform, d.text) and d.topic == "open models" for d in drafts)
    assert "\n\n" in drafts[1].text  # the LinkedIn post is the multi-paragraph one
    (request,) = fake.chat_requests
    assert fake.server.requests[0].headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert slots_of(request) == ALL_SLOTS
    assert request["temperature"] == pytest.approx(0.7)
    schema = request["response_format"]["json_schema"]["schema"]
    item = schema["properties"]["posts"]["items"]["properties"]
    assert item["platform"]["enum"] == ["linkedin", "twitter"]
    assert item["slot"]["enum"] == sorted(
        {slot_key(s.slot_at) for s in (X_SLOT, LI_SLOT, X_SLOT_2)}
    )


def test_the_prompt_carries_voice_topics_research_history_insights_language_and_limits() -> None:
    messages = build_messages(make_brief(), [X_SLOT, LI_SLOT])
    prompt = "\n".join(m["content"] for m in messages)
    for expected in (
        "playful but precise",
        "open-source AI",
        "Open models close the gap",
        "Benchmarks within a few points.",
        "https://example.org/open",
        "Yesterday we talked about GPUs.",
        "Questions at the end doubled comments.",
        "'fr'",
        "280 weighted characters",
        "3000 characters",
        "2026-11-26T09:00:00Z",
    ):
        assert expected in prompt, expected


@pytest.mark.parametrize(
    ("creativity", "temperature"), [(0.0, 0.2), (0.5, 0.7), (1.0, 1.2), (-3, 0.2), (7, 1.2)]
)
def test_creativity_maps_linearly_onto_a_bounded_temperature(
    creativity: float, temperature: float
) -> None:
    assert temperature_for(creativity) == pytest.approx(temperature)


def test_duplicate_slots_in_the_brief_are_asked_once(fake: FakeOpenAI) -> None:
    drafts = make_provider(fake).generate(make_brief(slots=[X_SLOT, X_SLOT]))
    assert len(drafts) == 1
    assert slots_of(fake.chat_requests[0]) == [ALL_SLOTS[0]]


def test_check_retrieves_the_model(fake: FakeOpenAI) -> None:
    report = make_provider(fake).check()
    assert "gpt-test" in report and "output mode json_schema" in report
    assert fake.server.requests[0].path == "/v1/models/gpt-test"


def test_check_reports_a_model_the_server_does_not_serve(fake: FakeOpenAI) -> None:
    with pytest.raises(PermanentError, match="gpt-test"):
        make_provider(fake, model="llama-unknown").check()


def test_check_with_a_wrong_key_is_an_auth_error(fake: FakeOpenAI) -> None:
    with pytest.raises(AuthError):
        make_provider(fake, api_key="sk-wrong").check()


# --- invalid answers: retried for the missing slots only, bounded ---------------------------


@pytest.mark.parametrize(
    "mode", ["refusal", "truncated", "invalid_json", "blank", "wrong_shape", "no_choices"]
)
def test_an_unusable_answer_is_retried_and_the_retry_explains_why(
    fake: FakeOpenAI, mode: str
) -> None:
    fake.script(mode)
    drafts = make_provider(fake).generate(make_brief())
    assert len(drafts) == 3
    first, second = fake.chat_requests
    assert slots_of(second) == ALL_SLOTS
    assert len(second["messages"]) == len(first["messages"]) + 1
    assert "could not be used" in second["messages"][-1]["content"]


def test_over_limit_texts_are_retried_for_those_slots_only(fake: FakeOpenAI) -> None:
    fake.script("over_limit")
    drafts = make_provider(fake).generate(make_brief())
    assert len(drafts) == 3 and all(fits_platform(d.platform, d.text) for d in drafts)
    first, second = fake.chat_requests
    assert slots_of(first) == ALL_SLOTS
    assert slots_of(second) == [ALL_SLOTS[0], ALL_SLOTS[2]]  # the LinkedIn post was kept
    assert "299 weighted characters; X allows 280" in second["messages"][-1]["content"]
    schema = second["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["posts"]["items"]["properties"]["platform"]["enum"] == ["twitter"]


def test_missing_slots_are_asked_again(fake: FakeOpenAI) -> None:
    fake.script("first_only", "first_only")
    drafts = make_provider(fake).generate(make_brief())
    assert len(drafts) == 3
    assert [len(slots_of(r)) for r in fake.chat_requests] == [3, 2, 1]


def test_retries_are_bounded_and_the_valid_drafts_are_returned(fake: FakeOpenAI) -> None:
    fake.script("over_limit", "over_limit", "over_limit", "ok")
    drafts = make_provider(fake, max_attempts=3).generate(make_brief())
    assert [d.platform for d in drafts] == ["linkedin"]  # the two X slots stay empty
    assert len(fake.chat_requests) == 3


def test_nothing_usable_after_all_attempts_raises_generation_error(fake: FakeOpenAI) -> None:
    fake.script("refusal", "truncated", "invalid_json")
    with pytest.raises(GenerationError, match="not valid JSON"):
        make_provider(fake, max_attempts=3).generate(make_brief())
    assert len(fake.chat_requests) == 3


def test_one_attempt_means_no_retry(fake: FakeOpenAI) -> None:
    fake.script("refusal")
    with pytest.raises(GenerationError, match="refused"):
        make_provider(fake, max_attempts=1).generate(make_brief())
    assert len(fake.chat_requests) == 1


def test_unrequested_and_duplicate_posts_are_ignored(fake: FakeOpenAI) -> None:
    def answer(request: dict[str, Any]) -> list[dict[str, Any]]:
        x = {
            "platform": "twitter",
            "slot": ALL_SLOTS[0][1],
            "text": "First take #AI",
            "topic": "ai",
        }
        return [
            x,
            {**x, "text": "Second take on the same slot"},
            {**x, "slot": "2030-01-01T00:00:00Z", "text": "A slot nobody asked for"},
            {
                **x,
                "slot": "2026-11-26T09:00:00+00:00",
                "platform": "linkedin",
                "text": "Wrong pair",
            },
        ]

    fake.script(answer)
    drafts = make_provider(fake, max_attempts=1).generate(make_brief(slots=[X_SLOT]))
    assert [d.text for d in drafts] == ["First take #AI"]


def test_slots_written_with_an_offset_are_matched_to_the_utc_slot(fake: FakeOpenAI) -> None:
    fake.script(
        lambda request: [
            {
                "platform": "twitter",
                "slot": "2026-11-26T10:00:00+01:00",
                "text": "Hi #AI",
                "topic": "",
            }
        ]
    )
    (draft,) = make_provider(fake).generate(make_brief(slots=[X_SLOT]))
    assert draft.slot_at == X_SLOT.slot_at and draft.topic is None


# --- HTTP and transport errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("429", RateLimited),
        ("401", AuthError),
        ("400", PermanentError),
        ("500", TemporaryError),
        ("close", TemporaryError),
        ("garbage_body", TemporaryError),
    ],
)
def test_api_errors_map_to_provider_errors_without_sdk_retries(
    fake: FakeOpenAI, mode: str, error: type
) -> None:
    fake.script(mode)
    with pytest.raises(error):
        make_provider(fake).generate(make_brief())
    assert len(fake.chat_requests) == 1  # max_retries=0: the caller decides


def test_rate_limit_carries_the_reset_instant(fake: FakeOpenAI) -> None:
    fake.script("429")
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as info:
        make_provider(fake).generate(make_brief())
    assert info.value.reset_at is not None
    assert before + timedelta(seconds=19) <= info.value.reset_at <= before + timedelta(seconds=25)


def test_a_wrong_key_is_an_auth_error(fake: FakeOpenAI) -> None:
    with pytest.raises(AuthError):
        make_provider(fake, api_key="sk-wrong").generate(make_brief())


def test_a_hanging_server_times_out_as_temporary(fake: FakeOpenAI) -> None:
    fake.script("hang")
    with pytest.raises(TemporaryError, match="timed out"):
        make_provider(fake, timeout=0.3).generate(make_brief())


def test_a_refused_connection_is_temporary() -> None:
    with FakeOpenAI() as fake:
        url = fake.url
    provider = OpenAIGeneration(DEFAULT_API_KEY, url, DEFAULT_MODEL, timeout=1.0)
    with pytest.raises(TemporaryError, match="unreachable"):
        provider.generate(make_brief())


def test_an_api_error_on_a_retry_keeps_the_drafts_already_accepted(fake: FakeOpenAI) -> None:
    fake.script("first_only", "500")
    drafts = make_provider(fake).generate(make_brief())
    assert [d.platform for d in drafts] == ["twitter"]
    assert len(fake.chat_requests) == 2


def test_the_request_body_is_plain_json_the_fake_can_read(fake: FakeOpenAI) -> None:
    make_provider(fake).generate(make_brief(slots=[LI_SLOT]))
    body = fake.server.requests_to("/v1/chat/completions")[0].body
    assert json.loads(body)["model"] == DEFAULT_MODEL
