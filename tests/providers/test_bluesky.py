"""BlueskyPublisher against a local fake PDS over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.providers.base import AccountCredentials, PostRef
from app.providers.bluesky import BlueskyPublisher, record_key
from app.providers.errors import AuthError, OutcomeUnknown, PermanentError, RateLimited
from tests.fakes.bluesky import TID_RE, FakeBluesky
from tests.wire import replay_next

READ_TIMEOUT = 0.5
#: When the tests' posts are due: read once from the real clock (the fakes stamp with it), so
#: every call for one post derives the same key.
SCHEDULED_AT = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky() as server:
        yield server


@pytest.fixture
def client(fake: FakeBluesky) -> Iterator[BlueskyPublisher]:
    with BlueskyPublisher(fake.base_url, timeout=httpx.Timeout(READ_TIMEOUT, connect=2.0)) as publisher:
        yield publisher


def connect(client: BlueskyPublisher, fake: FakeBluesky) -> AccountCredentials:
    session = client.create_session("@alice.test", "app-pass-1111")
    assert session.did == fake.account.did and session.pds_url == fake.base_url
    return AccountCredentials(1, "bluesky", session.did, session.tokens.access_token, session.tokens.refresh_token,
                              session.tokens.expires_at, service_url=session.pds_url)


def ref(post_id: int = 7, language: str = "en") -> PostRef:
    return PostRef(post_id, SCHEDULED_AT, language)


def test_record_keys_are_tids_derived_from_the_post():
    at = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
    keys = {record_key(PostRef(i, at)) for i in (1, 2, 1_000_001, 999_999)}
    assert len(keys) == 4 and all(TID_RE.fullmatch(k) for k in keys)
    assert record_key(PostRef(1, at)) == record_key(PostRef(1, at, "fr"))  # the post, not its options
    assert record_key(PostRef(1, at)) != record_key(PostRef(1, at + timedelta(seconds=1)))


def test_connect_with_an_app_password_reads_the_pds_from_the_did_document(client, fake):
    creds = connect(client, fake)
    assert creds.expires_at is not None and creds.expires_at > datetime.now(UTC)
    assert client.check_account(creds) == "@alice.test"
    with pytest.raises(AuthError, match="app password"):
        client.create_session("alice.test", "wrong")


def test_publish_sends_facets_langs_and_the_derived_key(client, fake):
    creds = connect(client, fake)
    fake.add_account("bob.test", "x")
    text = "Déjà vu 🎉 日本 read https://example.org/x #Python with @bob.test"
    result = client.publish(creds, text, ref(language="fr"))
    [record] = fake.posts()
    assert result.external_id == record.uri and record.uri.endswith("/" + record_key(ref(language="fr")))
    assert record.value["langs"] == ["fr"] and record.value["text"] == text
    kinds = [f["features"][0]["$type"].rpartition("#")[2] for f in record.value["facets"]]
    assert kinds == ["link", "tag", "mention"]
    assert result.published_at is not None


def test_a_repeated_create_is_refused_by_the_pds_and_read_back_as_already_published(client, fake):
    creds = connect(client, fake)
    first = client.publish(creds, "once only", ref())
    again = client.publish(creds, "once only", ref())
    assert len(fake.posts()) == 1
    assert again.external_id == first.external_id
    assert again.published_at == datetime.fromisoformat(fake.posts()[0].value["createdAt"].replace("Z", "+00:00"))
    assert len(fake.requests_to("/xrpc/com.atproto.repo.createRecord")) == 2  # refused the second time


def test_a_create_whose_answer_is_lost_is_settled_by_reading_its_key(client, fake):
    creds = connect(client, fake)
    fake.hang_next(path="/xrpc/com.atproto.repo.createRecord", seconds=2)
    result = client.publish(creds, "answer lost", ref())
    assert result.external_id == fake.posts()[0].uri
    assert client.find_published(creds, "answer lost", datetime.now(UTC), ref()).external_id == result.external_id
    assert client.find_published(creds, "other", datetime.now(UTC), ref(post_id=8)) is None


def test_a_lost_create_that_never_arrived_stays_unknown(client, fake):
    creds = connect(client, fake)
    fake.drop_next(path="/xrpc/com.atproto.repo.createRecord", process=False)
    with pytest.raises(OutcomeUnknown):
        client.publish(creds, "never arrived", ref())
    assert fake.posts() == []


def test_over_long_text_and_bad_facets_are_refused(client, fake):
    creds = connect(client, fake)
    with pytest.raises(PermanentError, match="301 graphemes; Bluesky allows 300"):
        client.publish(creds, "é" * 301, ref())
    assert fake.requests_to("/xrpc/com.atproto.repo.createRecord") == []
    record = {"$type": "app.bsky.feed.post", "text": "🎉 https://example.org", "createdAt": "2027-03-08T09:00:00.000Z",
              "facets": [{"index": {"byteStart": 2, "byteEnd": 21},  # character offsets, not bytes
                          "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org"}]}]}
    response = httpx.post(f"{fake.base_url}/xrpc/com.atproto.repo.createRecord",
                          headers={"Authorization": f"Bearer {creds.access_token}"},
                          json={"repo": creds.external_id, "collection": "app.bsky.feed.post",
                                "rkey": record_key(ref()), "record": record})
    assert response.status_code == 400 and "facets/0" in response.json()["message"]
    record = {**record, "text": "e\u0301" * 301, "facets": []}  # 301 graphemes, 602 code points
    response = httpx.post(f"{fake.base_url}/xrpc/com.atproto.repo.createRecord",
                          headers={"Authorization": f"Bearer {creds.access_token}"},
                          json={"repo": creds.external_id, "collection": "app.bsky.feed.post",
                                "rkey": record_key(ref()), "record": record})
    assert response.status_code == 400 and "300 graphemes" in response.json()["message"]
    assert fake.posts() == []


def test_expired_access_refreshes_and_a_revoked_app_password_needs_reauthorisation(client, fake):
    creds = connect(client, fake)
    fake.expire_access_tokens()
    with pytest.raises(AuthError, match="ExpiredToken"):
        client.publish(creds, "after expiry", ref())
    tokens = client.refresh(creds)
    assert tokens.refresh_token and tokens.refresh_token != creds.refresh_token  # rotated
    creds.access_token, creds.refresh_token = tokens.access_token, tokens.refresh_token
    client.publish(creds, "after expiry", ref())
    fake.revoke_app_password("alice.test")
    with pytest.raises(AuthError, match="revoked"):
        client.refresh(creds)


def test_rate_limit_waits_for_the_pds_reset(client, fake):
    creds = connect(client, fake)
    replay_next(fake, "bluesky/create_429_rate_limited", path="/xrpc/com.atproto.repo.createRecord")
    with pytest.raises(RateLimited) as caught:
        client.publish(creds, "limited", ref())
    assert caught.value.reset_at == datetime.fromtimestamp(1796720400, tz=UTC)
    assert fake.posts() == []


def test_metrics_from_get_posts_in_batches_of_25(client, fake):
    creds = connect(client, fake)
    uris = [client.publish(creds, f"post {i}", ref(post_id=100 + i)).external_id for i in range(30)]
    fake.posts()[0].counts.update(likeCount=5, repostCount=2, quoteCount=1, replyCount=3)
    metrics = client.fetch_metrics(creds, [*uris, "at://did:plc:gone/app.bsky.feed.post/3kgone"])
    assert len(metrics) == 30 and len(fake.requests_to("/xrpc/app.bsky.feed.getPosts")) == 2
    first = metrics[fake.posts()[0].uri]
    assert (first.likes, first.shares, first.comments, first.impressions) == (5, 3, 3, 0)
