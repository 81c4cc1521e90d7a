"""LinkedIn's day throttle, sunset versions, hashtags and version format.

Replayed responses (tests/fixtures/wire/linkedin, ``source`` field in each): the day throttle
body as reported for live calls, with LinkedIn's documentation that daily limits reset at
midnight UTC and no Retry-After; the 426 NONEXISTENT_VERSION body as reported live in
n8n-io/n8n #14737 and others.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.config import DEFAULT_LINKEDIN_VERSION, Settings
from app.errors import ConfigError
from app.providers.errors import OperatorProblem, RateLimited
from app.providers.linkedin import (
    LinkedInPublisher,
    next_midnight_utc,
    to_little_text,
    unescape_little_text,
    version_age_months,
)
from tests.fakes.linkedin import FakeLinkedIn, first_unescaped_reserved
from tests.providers.test_linkedin import account_for, make_client
from tests.wire import replay_next


@pytest.fixture
def fake() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as server:
        yield server


def test_a_day_throttle_waits_for_the_next_midnight_utc(fake: FakeLinkedIn) -> None:
    now = datetime.now(UTC)
    replay_next(fake, "linkedin/any_429_day_throttle", method="POST", path="/rest/posts")

    with make_client(fake.base_url, clock=lambda: now) as client:
        with pytest.raises(RateLimited) as caught:
            client.publish(account_for(fake), "hello")

    reset = caught.value.reset_at
    assert reset == next_midnight_utc(now)
    assert (reset.hour, reset.minute, reset.second) == (0, 0, 0) and now < reset <= now + timedelta(days=1)
    assert caught.value.limit == "day"
    assert fake.posts == []


@pytest.mark.parametrize("hour", [0, 13, 23])
def test_next_midnight_utc_is_within_a_day_whatever_the_offset(hour: int) -> None:
    now = datetime.now(UTC).replace(hour=hour, minute=59).astimezone(
        __import__("zoneinfo").ZoneInfo("Pacific/Auckland"))
    midnight = next_midnight_utc(now)
    assert midnight.tzinfo == UTC and midnight.time().isoformat() == "00:00:00"
    assert timedelta(0) < midnight - now <= timedelta(days=1)


def test_a_nonexistent_version_is_an_operator_problem_sent_to_review(fake: FakeLinkedIn) -> None:
    replay_next(fake, "linkedin/any_426_nonexistent_version", method="POST", path="/rest/posts")

    with make_client(fake.base_url) as client:
        with pytest.raises(OperatorProblem) as caught:
            client.publish(account_for(fake), "hello")

    problem = caught.value
    assert (problem.provider, problem.kind, problem.pause) == ("linkedin", "linkedin_version_sunset", None)
    assert "LINKEDIN_VERSION" in str(problem) and "NONEXISTENT_VERSION" in str(problem)


def test_hashtags_are_sent_as_hashtag_templates_and_the_rest_escaped(fake: FakeLinkedIn) -> None:
    text = "Open models (finally) close the gap. #AI #Open_Source, not #1 nor a#b @you"
    with make_client(fake.base_url) as client:
        client.publish(account_for(fake), text)

    commentary = fake.requests_to("/rest/posts", "POST")[0].json["commentary"]
    assert commentary == (r"Open models \(finally\) close the gap. {hashtag|\#|AI} "
                          r"{hashtag|\#|Open\_Source}, not \#1 nor a\#b \@you")
    assert first_unescaped_reserved(commentary) is None  # LinkedIn would not truncate it
    assert unescape_little_text(commentary) == text


def test_a_post_with_hashtags_is_found_again_when_reconciling(fake: FakeLinkedIn) -> None:
    text = "Shipping day. #launch #AI"
    since = datetime.now(UTC) - timedelta(minutes=1)
    with make_client(fake.base_url) as client:
        published = client.publish(account_for(fake), text)
        found = client.find_published(account_for(fake), text, since)
    assert found is not None and found.external_id == published.external_id


def test_to_little_text_round_trips_unicode_hashtags() -> None:
    text = "Été #Café #日本 #x_y"
    assert unescape_little_text(to_little_text(text)) == text
    assert "{hashtag|\\#|Café}" in to_little_text(text)


@pytest.mark.parametrize("version", ["202610", "202610.01", "202512.99"])
def test_linkedin_version_accepts_yyyymm_and_yyyymm_rr(fake: FakeLinkedIn, version: str) -> None:
    assert Settings.from_env({"LINKEDIN_VERSION": version}).linkedin_version == version
    with make_client(fake.base_url, version=version) as client:
        client.publish(account_for(fake), "hello")
    assert fake.requests_to("/rest/posts", "POST")[0].headers["linkedin-version"] == version


@pytest.mark.parametrize("version", ["2025-10", "202513", "202610.1", "202610.001", "20261"])
def test_malformed_versions_are_refused_naming_the_variable(version: str) -> None:
    with pytest.raises(ConfigError, match="LINKEDIN_VERSION"):
        Settings.from_env({"LINKEDIN_VERSION": version})
    with pytest.raises(ValueError, match="YYYYMM"):
        LinkedInPublisher("http://a", "http://b", version, "id", "secret")


def test_the_default_version_is_recent_when_released() -> None:
    # Released 2026-10: about a month old when chosen (2026-11), sunset expected around 2027-10.
    assert DEFAULT_LINKEDIN_VERSION == "202610"
    assert version_age_months("202610", datetime(2026, 11, 27, tzinfo=UTC)) == 1


def test_version_age_counts_whole_months_from_any_clock() -> None:
    now = datetime.now(UTC)
    eleven_ago = (now.year * 12 + now.month - 1) - 11
    version = f"{eleven_ago // 12}{eleven_ago % 12 + 1:02d}"
    assert version_age_months(version, now) == 11
    assert version_age_months(version + ".02", now) == 11
