"""Reconciliation reads back when the platform created a post (X ``created_at``, LinkedIn
``publishedAt``), so a post found after a crash is recorded with its true publish time."""

# ruff: noqa: F811 - the fixtures imported from the provider test modules are used as arguments
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.providers.linkedin import LinkedInPublisher
from app.providers.x import XPublisher
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX
from tests.providers import test_linkedin as li
from tests.providers import test_x as x
from tests.providers.test_x import client, fake  # noqa: F401


def test_x_find_published_returns_the_tweets_created_at(fake: FakeX, client: XPublisher) -> None:
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=42)
    target = fake.add_post("went out before the crash", created_at=created)

    found = client.find_published(x.account_for(fake), "went out before the crash",
                                  created - timedelta(minutes=1))

    assert found is not None and found.external_id == target.id
    assert found.published_at == created


def test_linkedin_find_published_returns_published_at() -> None:
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=42)
    with FakeLinkedIn() as fake_li, li.make_client(fake_li.base_url) as publisher:
        assert isinstance(publisher, LinkedInPublisher)
        target = fake_li.add_post("went out (before) the crash",
                                  created_ms=int(created.timestamp() * 1000) + 250)

        found = publisher.find_published(li.account_for(fake_li), "went out (before) the crash",
                                         created - timedelta(minutes=1))

    assert found is not None and found.external_id == target.urn
    assert found.published_at == created + timedelta(milliseconds=250)
