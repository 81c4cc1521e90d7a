"""SandboxPublisher: simulated, deterministic, never touches the network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.providers.base import AccountCredentials
from app.providers.errors import PermanentError
from app.providers.sandbox import SandboxPublisher, simulated_metrics


def account(external_id: str | None = "acct-1") -> AccountCredentials:
    return AccountCredentials(
        account_id=1, platform="twitter", external_id=external_id, access_token="t"
    )


def test_publish_returns_deterministic_labelled_id() -> None:
    publisher = SandboxPublisher("twitter")
    first = publisher.publish(account(), "hello")
    again = publisher.publish(account(), "hello")
    other = publisher.publish(account("acct-2"), "hello")

    assert first == again
    assert (
        first.external_id.startswith("sandbox-twitter-")
        and len(first.external_id) == len("sandbox-twitter-") + 12
    )
    assert other.external_id != first.external_id
    assert publisher.offline is True and publisher.name == "sandbox"


@pytest.mark.parametrize(
    ("platform", "ok", "too_long"),
    [("twitter", "a" * 280, "a" * 281), ("linkedin", "a" * 3000, "a" * 3001)],
)
def test_publish_refuses_texts_over_the_platform_limit(
    platform: str, ok: str, too_long: str
) -> None:
    publisher = SandboxPublisher(platform)
    publisher.publish(account(), ok)
    with pytest.raises(PermanentError, match="allows|limit"):
        publisher.publish(account(), too_long)


def test_x_limit_uses_weighted_length_for_urls() -> None:
    """A long URL counts 23 on X, so a post longer than 280 code points can still fit."""
    text = "a" * 250 + " https://example.com/" + "x" * 100
    assert len(text) > 280
    SandboxPublisher("twitter").publish(account(), text)


def test_find_published_is_always_none() -> None:
    assert SandboxPublisher("linkedin").find_published(account(), "x", datetime.now(UTC)) is None


def test_refresh_returns_fake_token_and_keeps_refresh_token() -> None:
    tokens = SandboxPublisher("twitter").refresh(account())
    assert tokens.access_token.startswith("sandbox-")
    assert tokens.refresh_token is None
    assert tokens.expires_at is not None and tokens.expires_at > datetime.now(UTC)


def test_metrics_are_deterministic_and_plausible() -> None:
    ids = [f"sandbox-twitter-{i:012x}" for i in range(200)]
    metrics = SandboxPublisher("twitter").fetch_metrics(account(), ids)

    assert metrics == SandboxPublisher("twitter").fetch_metrics(account(), ids)
    for m in metrics.values():
        assert 200 <= m.impressions <= 5000
        assert 0.005 <= m.likes / m.impressions <= 0.085
        assert m.shares <= m.likes and m.comments <= m.likes
    assert len({m.impressions for m in metrics.values()}) > 100  # actually varies by id
    assert simulated_metrics(ids[0]) == metrics[ids[0]]
