"""The daily generation when OpenAI answers 429 ``insufficient_quota`` (the recorded body in
tests/fixtures/wire/openai/chat_429_insufficient_quota.json, quoted from live responses).

Only billing fixes it: the day's runs fail with that reason, the operator is told once, and the
other users' runs do not call OpenAI again (no retry storm).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.clock import SettableClock
from app.config import Settings
from app.crypto import generate_key
from app.models import ExecutionStatus, Notification, ProviderHold
from app.runtime import Runtime
from tests.factories import make_users
from tests.fakes.openai import DEFAULT_API_KEY, DEFAULT_MODEL, FakeOpenAI
from tests.workflows.test_generation import run_day


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def runtime(pg_url: str, pg_engine: object, clock: SettableClock, fake: FakeOpenAI) -> Runtime:
    settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),),
                        openai_api_key=DEFAULT_API_KEY, openai_base_url=fake.url, openai_model=DEFAULT_MODEL)
    return Runtime.from_settings(settings, clock=clock)


def test_an_exhausted_quota_fails_the_day_once_notifies_the_operator_and_stops_calling(
        runtime: Runtime, fake: FakeOpenAI, now: object) -> None:
    users = make_users(runtime, 3)
    fake.script("insufficient_quota")

    executions = run_day(runtime)  # raises nothing: no RetryLater, nothing to retry on a timer

    assert len(executions) == len(users)
    assert {e.status for e in executions} == {ExecutionStatus.FAILED}
    assert all("quota" in (e.error or "") for e in executions)
    assert len(fake.chat_requests) == 1  # the other users' runs did not call OpenAI
    with runtime.session_factory() as session:
        operator = list(session.scalars(select(Notification).where(Notification.user_id.is_(None))))
        per_user = list(session.scalars(select(Notification).where(Notification.kind == "generation_failed")))
        hold = session.get(ProviderHold, "openai")
    assert [n.kind for n in operator] == ["openai_insufficient_quota"]
    assert "billing" in operator[0].body
    assert len(per_user) == len(users) and all("quota" in n.body for n in per_user)
    assert hold is not None and hold.kind == "openai_insufficient_quota"
