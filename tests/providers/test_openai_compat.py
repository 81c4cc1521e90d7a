"""OpenAI quota, compatible servers without json_schema, and reasoning models without temperature.

Replayed through the socket fake (tests/fakes/openai.py) from tests/fixtures/wire/openai, each
with its ``source``: the 429 ``insufficient_quota`` body quoted from live responses (Pipedream
forum, OpenAI help); the llama.cpp-server 500 "response_format type must be one of "text" or
"json_object", but got: json_schema" (ik_llama.cpp #778); the reasoning-model 400
``unsupported_value`` on ``temperature``; the 429 ``rate_limit_exceeded`` with its reset headers;
and the envelope of a recorded gpt-4o json_schema reply for every completion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.providers.errors import OperatorProblem, RateLimited
from app.providers.openai_compat import CAPABILITIES
from app.providers.openai_generation import OpenAIGeneration
from app.text_limits import fits_platform
from tests.fakes.openai import DEFAULT_API_KEY, DEFAULT_MODEL, FakeOpenAI
from tests.providers.test_openai_generation import make_brief


def provider(fake: FakeOpenAI, **kwargs: Any) -> OpenAIGeneration:
    return OpenAIGeneration(DEFAULT_API_KEY, fake.url, DEFAULT_MODEL, timeout=2.0, **kwargs)


def formats(fake: FakeOpenAI) -> list[str | None]:
    return [(r.get("response_format") or {}).get("type") for r in fake.chat_requests]


@pytest.fixture
def llama() -> Iterator[FakeOpenAI]:
    """A llama.cpp-style server: json_object only, json_schema answered with the recorded 500."""
    with FakeOpenAI(output_modes=("json_object",)) as server:
        yield server


def test_insufficient_quota_is_an_operator_problem_after_one_request() -> None:
    with FakeOpenAI() as fake:
        fake.script("insufficient_quota")
        with pytest.raises(OperatorProblem) as caught:
            provider(fake).generate(make_brief())
        assert len(fake.chat_requests) == 1  # no retry: only billing fixes it
    problem = caught.value
    assert (problem.provider, problem.kind) == ("openai", "openai_insufficient_quota")
    assert "You exceeded your current quota" in str(problem) and not isinstance(problem, RateLimited)


def test_an_ordinary_rate_limit_is_still_a_rate_limit() -> None:
    with FakeOpenAI() as fake:
        fake.script("429")
        with pytest.raises(RateLimited) as caught:
            provider(fake).generate(make_brief())
    assert caught.value.reset_at is not None


def test_a_server_refusing_json_schema_falls_back_to_json_object_and_remembers(llama: FakeOpenAI) -> None:
    drafts = provider(llama).generate(make_brief())

    assert len(drafts) == 3 and all(fits_platform(d.platform, d.text) for d in drafts)
    assert formats(llama) == ["json_schema", "json_object"]
    assert CAPABILITIES.output_mode(llama.url) == "json_object"
    # Another generator (another user's run) on the same server asks the way that worked.
    provider(llama).generate(make_brief())
    assert formats(llama)[2:] == ["json_object"]


def test_a_server_ignoring_every_format_gets_json_asked_in_the_prompt() -> None:
    with FakeOpenAI(output_modes=(), ignore_unsupported=True) as fake:
        drafts = provider(fake, max_attempts=3).generate(make_brief())
        assert len(drafts) == 3
        assert formats(fake) == ["json_schema", "json_object", None]
        assert "Answer with one JSON object" in fake.chat_requests[-1]["messages"][0]["content"]
        assert CAPABILITIES.output_mode(fake.url) == "prompt"


def test_a_server_refusing_json_schema_and_json_object_uses_the_prompt() -> None:
    with FakeOpenAI(output_modes=()) as fake:
        assert len(provider(fake).generate(make_brief())) == 3
        assert formats(fake) == ["json_schema", "json_object", None]


def test_doctor_reports_the_output_mode_the_server_supports(llama: FakeOpenAI) -> None:
    assert "output mode json_object" in provider(llama).check()
    with FakeOpenAI() as openai_like:
        assert "output mode json_schema" in provider(openai_like).check()
    with FakeOpenAI(output_modes=(), ignore_unsupported=True) as plain:
        assert "output mode prompt" in provider(plain).check()


def test_a_reasoning_model_is_asked_again_without_temperature_and_remembered() -> None:
    with FakeOpenAI(rejects_temperature=True) as fake:
        drafts = provider(fake).generate(make_brief(creativity_level=0.9))
        assert len(drafts) == 3
        sent = [r.get("temperature") for r in fake.chat_requests]
        assert sent[0] is not None and sent[1:] == [None]
        # Creativity reaches the model through the prompt instead.
        assert "bold, surprising angles" in fake.chat_requests[-1]["messages"][1]["content"]
        provider(fake).generate(make_brief())
        assert [r.get("temperature") for r in fake.chat_requests][2:] == [None]
        assert "refuses a temperature" in provider(fake).check()
