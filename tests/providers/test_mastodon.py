"""MastodonPublisher against a local fake instance over real sockets."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.providers.base import AccountCredentials, PostRef
from app.providers.errors import AuthError, OutcomeUnknown, PermanentError, RateLimited
from app.providers.mastodon import OUT_OF_BAND, MastodonPublisher, idempotency_key, instance_url
from tests.fakes.mastodon import FakeMastodon
from tests.wire import replay_next

READ_TIMEOUT = 0.5
#: When the tests' posts are due: read once from the real clock (the fakes stamp with it), so
#: every call for one post derives the same key.
SCHEDULED_AT = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with FakeMastodon() as server:
        yield server


@pytest.fixture
def client() -> Iterator[MastodonPublisher]:
    with MastodonPublisher(timeout=httpx.Timeout(READ_TIMEOUT, connect=2.0)) as publisher:
        yield publisher


def creds_for(fake: FakeMastodon, token: str | None = None) -> AccountCredentials:
    return AccountCredentials(1, "mastodon", fake.account_id, token or fake.access_token, service_url=fake.base_url)


def ref(post_id: int = 7, visibility: str = "unlisted", language: str = "de") -> PostRef:
    return PostRef(post_id, SCHEDULED_AT, language, visibility)


def test_instance_url_from_what_a_user_types():
    assert instance_url(" Mastodon.Social/ ") == "https://mastodon.social"
    assert instance_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    with pytest.raises(ValueError, match="not an instance"):
        instance_url("https://example.org/some/path")


@pytest.mark.parametrize("pkce", [True, False])
def test_register_then_authorization_code_flow_with_pkce_where_offered(pkce, client):
    with FakeMastodon(pkce=pkce) as fake:
        app = client.register_app(fake.base_url, OUT_OF_BAND)
        assert app.pkce is pkce
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        url = client.authorize_url(fake.base_url, app, OUT_OF_BAND, "state-1", challenge)
        assert ("code_challenge" in parse_qs(urlsplit(url).query)) is pkce
        assert parse_qs(urlsplit(url).query)["scope"] == ["read:statuses write:statuses write:media profile"]
        code = fake.approve(url)
        if pkce:
            with pytest.raises(AuthError, match="refused the authorization code"):
                client.exchange_code(fake.base_url, app, OUT_OF_BAND, code, "a-wrong-verifier")
            code = fake.approve(url)  # the refused code is spent
        tokens = client.exchange_code(fake.base_url, app, OUT_OF_BAND, code, verifier)
        with pytest.raises(AuthError):  # single use
            client.exchange_code(fake.base_url, app, OUT_OF_BAND, code, verifier)
        assert client.verify_credentials(fake.base_url, tokens.access_token)["acct"] == "ada"


def test_publish_carries_the_idempotency_key_visibility_and_language(client, fake):
    result = client.publish(creds_for(fake), "Hallo Welt", ref())
    [status] = fake.statuses
    assert (status.visibility, status.language, status.text) == ("unlisted", "de", "Hallo Welt")
    assert fake.requests_to("/api/v1/statuses", "POST")[0].headers["idempotency-key"] == idempotency_key(ref())
    assert result.external_id == status.id and result.published_at is not None


def test_a_repeated_create_returns_the_first_status_until_the_key_expires(client, fake):
    first = client.publish(creds_for(fake), "only once", ref())
    again = client.publish(creds_for(fake), "only once", ref())
    assert again == first and len(fake.statuses) == 1
    fake.forget_idempotency_keys()  # an hour later
    client.publish(creds_for(fake), "only once", ref())
    assert len(fake.statuses) == 2  # why a re-send past the hour reconciles first


def test_a_lost_answer_is_unknown_and_found_by_repeating_or_reconciling(client, fake):
    fake.hang_next(path="/api/v1/statuses", seconds=2)
    with pytest.raises(OutcomeUnknown):
        client.publish(creds_for(fake), "answer lost & found", ref())
    assert client.publish(creds_for(fake), "answer lost & found", ref()).external_id == fake.statuses[0].id
    since = datetime.now(UTC) - timedelta(minutes=1)
    found = client.find_published(creds_for(fake), "answer lost & found", since, ref())
    assert found is not None and found.external_id == fake.statuses[0].id
    assert client.find_published(creds_for(fake), "something else", since, ref()) is None


def test_the_instance_limit_counts_as_mastodon_counts(client):
    with FakeMastodon(max_characters=40, reserved_per_url=23) as fake:
        fits = "@ada@social.test " + "https://example.org/" + "a" * 200  # 4 + 1 + 23 = 28
        client.publish(creds_for(fake), fits, ref())
        with pytest.raises(PermanentError, match="it allows 40"):
            client.publish(creds_for(fake), "x" * 41, ref(post_id=8))
        response = httpx.post(f"{fake.base_url}/api/v1/statuses", data={"status": "y" * 41},
                              headers={"Authorization": f"Bearer {fake.access_token}"})
        assert response.status_code == 422 and "character limit of 40" in response.json()["error"]
        assert len(fake.statuses) == 1


def test_statuses_are_classified_like_the_other_platforms(client, fake):
    with pytest.raises(AuthError):
        client.publish(creds_for(fake, "revoked"), "who am I", ref())
    replay_next(fake, "mastodon/statuses_422_validation", path="/api/v1/statuses")
    with pytest.raises(PermanentError, match="422"):
        client.publish(creds_for(fake), "refused", ref())
    replay_next(fake, "mastodon/statuses_429_rate_limited", path="/api/v1/statuses")
    with pytest.raises(RateLimited) as caught:
        client.publish(creds_for(fake), "limited", ref())
    assert caught.value.reset_at == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    with pytest.raises(AuthError, match="cannot be refreshed"):
        client.refresh(creds_for(fake))
    assert fake.statuses == []


def test_metrics_from_the_statuses_and_a_deleted_one_left_out(client, fake):
    ids = [client.publish(creds_for(fake), f"post {i}", ref(post_id=i)).external_id for i in range(22)]
    fake.statuses[0].counts.update(favourites=4, reblogs=2, replies=1)
    metrics = client.fetch_metrics(creds_for(fake), [*ids, "999"])
    assert len(metrics) == 22 and len(fake.requests_to("/api/v1/statuses", "GET")) == 2
    assert (metrics[ids[0]].likes, metrics[ids[0]].shares, metrics[ids[0]].comments) == (4, 2, 1)
