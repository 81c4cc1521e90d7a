"""X's three 429s and its 402, replayed from recorded/documented responses (tests/fixtures/wire/x).

Sources (each file's ``source`` field): the 15-minute window body from a live 429 quoted in
twitter-v2-rs #11 with the header format of docs.x.com rate-limits; the 24-hour header names as
parsed from live responses by node-twitter-api-v2; the usage-cap body seen on live 429s and
typed per docs.x.com response-codes-and-errors; the 402 status and headers from live failures
logged in tryethernal/ethernal #1314/#1324 (its body is a placeholder there and here).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.providers.errors import OperatorProblem, PermanentError, RateLimited
from app.providers.x import XPublisher
from tests.fakes.x import FakeX
from tests.providers.test_x import account_for, make_client
from tests.wire import replay_next


@pytest.fixture
def fake() -> Iterator[FakeX]:
    with FakeX() as server:
        yield server


@pytest.fixture
def client(fake: FakeX) -> Iterator[XPublisher]:
    with make_client(fake.base_url) as publisher:
        yield publisher


@pytest.mark.parametrize(
    ("fixture", "limit"),
    [("x/create_429_window", "window"), ("x/create_429_app_24h", "app_24h"),
     ("x/create_429_user_24h", "user_24h")],
)
def test_a_429_waits_for_the_reset_of_the_limit_that_was_hit(
    fake: FakeX, client: XPublisher, fixture: str, limit: str
) -> None:
    recorded = replay_next(fake, fixture, method="POST", path="/2/tweets")

    with pytest.raises(RateLimited) as caught:
        client.publish(account_for(fake), "hello")

    assert caught.value.reset_at == datetime.fromtimestamp(recorded["expect_reset_epoch"], tz=UTC)
    assert caught.value.limit == limit
    assert fake.posts == []


def test_the_app_24h_reset_is_not_the_window_reset(fake: FakeX, client: XPublisher) -> None:
    recorded = replay_next(fake, "x/create_429_app_24h")
    with pytest.raises(RateLimited) as caught:
        client.publish(account_for(fake), "hello")
    window = datetime.fromtimestamp(int(recorded["headers"]["x-rate-limit-reset"]), tz=UTC)
    assert caught.value.reset_at is not None and caught.value.reset_at > window


def test_the_monthly_usage_cap_is_an_operator_problem_not_a_rate_limit(
    fake: FakeX, client: XPublisher
) -> None:
    replay_next(fake, "x/create_429_usage_capped")

    with pytest.raises(OperatorProblem) as caught:
        client.publish(account_for(fake), "hello")

    problem = caught.value
    assert (problem.provider, problem.kind) == ("x", "x_usage_capped")
    assert problem.pause is not None  # stop publishing on this app for a while
    assert "Monthly product cap" in str(problem)
    assert not isinstance(problem, RateLimited)
    assert fake.posts == []


def test_a_402_is_an_operator_problem(fake: FakeX, client: XPublisher) -> None:
    replay_next(fake, "x/create_402_credits")

    with pytest.raises(OperatorProblem) as caught:
        client.publish(account_for(fake), "hello")

    assert caught.value.kind == "x_payment_required"
    assert "402" in str(caught.value) and "billing" in str(caught.value)
    assert isinstance(caught.value, PermanentError)  # never retried blindly
