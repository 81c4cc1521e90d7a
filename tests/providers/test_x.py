"""XPublisher against a local fake of X API v2 over real sockets."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.providers.base import AccountCredentials
from app.providers.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.providers.x import XPublisher, normalise_for_match
from tests.fakes.platform import unused_base_url
from tests.fakes.x import FakeX

#: Short enough that the hang tests are quick, long enough for a loaded CI box.
READ_TIMEOUT = 0.5


@pytest.fixture
def fake() -> Iterator[FakeX]:
    with FakeX() as server:
        yield server


def make_client(base_url: str, **kwargs: object) -> XPublisher:
    kwargs.setdefault("timeout", httpx.Timeout(READ_TIMEOUT, connect=2.0))
    return XPublisher(base_url, "x-client-id", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeX) -> Iterator[XPublisher]:
    with make_client(fake.base_url) as publisher:
        yield publisher


def account_for(fake: FakeX, **overrides: object) -> AccountCredentials:
    values: dict[str, object] = {
        "account_id": 1,
        "platform": "twitter",
        "external_id": fake.user_id,
        "access_token": fake.access_token,
        "refresh_token": fake.refresh_token,
        "expires_at": datetime.now(UTC) + timedelta(hours=1),
    }
    values.update(overrides)
    return AccountCredentials(**values)  # type: ignore[arg-type]


# -- publish -------------------------------------------------------------------------------


def test_publish_creates_tweet_with_bearer_token_and_json_body(
    fake: FakeX, client: XPublisher
) -> None:
    result = client.publish(account_for(fake), "Hello (world) & friends")

    assert [p.text for p in fake.posts] == ["Hello (world) & friends"]
    assert result.external_id == fake.posts[0].id
    assert result.url == f"https://x.com/i/web/status/{fake.posts[0].id}"
    sent = fake.requests_to("/2/tweets", "POST")[0]
    assert sent.headers["authorization"] == "Bearer x-access-1"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {"text": "Hello (world) & friends"}


def test_rate_limit_reset_header_becomes_aware_utc_datetime(
    fake: FakeX, client: XPublisher
) -> None:
    reset = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    fake.rate_limit_next(reset)

    with pytest.raises(RateLimited) as caught:
        client.publish(account_for(fake), "hello")

    assert caught.value.reset_at == reset
    assert caught.value.reset_at.tzinfo is not None
    assert fake.posts == []


def test_daily_user_cap_reset_wins_when_it_is_the_exhausted_limit(
    fake: FakeX, client: XPublisher
) -> None:
    fake.respond_next(
        429,
        {"title": "Too Many Requests"},
        headers={
            "x-rate-limit-reset": "1893456000",
            "x-user-limit-24hour-remaining": "0",
            "x-user-limit-24hour-reset": "1893500000",
        },
    )

    with pytest.raises(RateLimited) as caught:
        client.publish(account_for(fake), "hello")

    assert caught.value.reset_at == datetime.fromtimestamp(1893500000, tz=UTC)


def test_rate_limit_without_reset_header_has_no_reset_time(fake: FakeX, client: XPublisher) -> None:
    fake.respond_next(429, {"title": "Too Many Requests"})
    with pytest.raises(RateLimited) as caught:
        client.publish(account_for(fake), "hello")
    assert caught.value.reset_at is None


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_temporary(fake: FakeX, client: XPublisher, status: int) -> None:
    fake.respond_next(status, {"title": "Service Unavailable"})
    with pytest.raises(TemporaryError):
        client.publish(account_for(fake), "hello")


def test_500_on_create_is_outcome_unknown(fake: FakeX, client: XPublisher) -> None:
    fake.respond_next(500, {"title": "Internal Server Error"})
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello")


def test_stale_token_gets_auth_error_then_succeeds_after_refresh(
    fake: FakeX, client: XPublisher
) -> None:
    account = account_for(fake)
    fake.revoke_access_token()

    with pytest.raises(AuthError):
        client.publish(account, "hello")
    tokens = client.refresh(account)
    account.access_token = tokens.access_token
    result = client.publish(account, "hello")

    assert result.external_id == fake.posts[0].id


def test_expired_token_without_refresh_token_fails_without_a_request(
    fake: FakeX, client: XPublisher
) -> None:
    account = account_for(
        fake, refresh_token=None, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )

    with pytest.raises(AuthError, match="re-authorise"):
        client.publish(account, "hello")

    assert fake.requests == []


def test_duplicate_content_is_permanent_with_platform_detail(
    fake: FakeX, client: XPublisher
) -> None:
    fake.add_post("same words")
    with pytest.raises(PermanentError, match="duplicate content"):
        client.publish(account_for(fake), "same words")


def test_text_over_280_is_permanent(fake: FakeX, client: XPublisher) -> None:
    with pytest.raises(PermanentError, match="too long"):
        client.publish(account_for(fake), "x" * 281)
    assert fake.posts == []


@pytest.mark.parametrize("status", [400, 403, 422])
def test_client_errors_are_permanent(fake: FakeX, client: XPublisher, status: int) -> None:
    fake.respond_next(status, {"title": "Refused", "detail": f"refused with {status}"})
    with pytest.raises(PermanentError, match=f"refused with {status}"):
        client.publish(account_for(fake), "hello")


def test_connection_refused_is_temporary() -> None:
    with make_client(unused_base_url()) as client:
        with pytest.raises(TemporaryError):
            client.publish(account_for(FakeX()), "hello")


def test_read_timeout_after_sending_is_outcome_unknown_and_reconcilable(
    fake: FakeX, client: XPublisher
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    fake.hang_next(path="/2/tweets")

    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "Read this https://example.com/a-long-link & more")

    assert len(fake.posts) == 1  # the fake did create it: the client just never heard back
    found = client.find_published(
        account_for(fake), "Read this https://example.com/a-long-link & more", since
    )
    assert found is not None and found.external_id == fake.posts[0].id


def test_connection_closed_after_sending_is_outcome_unknown(
    fake: FakeX, client: XPublisher
) -> None:
    fake.drop_next(path="/2/tweets")
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello")


def test_invalid_json_on_201_is_outcome_unknown(fake: FakeX, client: XPublisher) -> None:
    fake.respond_next(201, b'{"data": {"id": "17', path="/2/tweets")
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello")


def test_201_without_id_is_outcome_unknown(fake: FakeX, client: XPublisher) -> None:
    fake.respond_next(201, {"data": {}}, path="/2/tweets")
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("refused"), TemporaryError),
        (httpx.ConnectTimeout("slow connect"), TemporaryError),
        (httpx.PoolTimeout("pool"), TemporaryError),
        (httpx.ReadTimeout("slow read"), OutcomeUnknown),
        (httpx.WriteTimeout("slow write"), OutcomeUnknown),
        (httpx.ReadError("reset"), OutcomeUnknown),
        (httpx.WriteError("broken pipe"), OutcomeUnknown),
        (httpx.RemoteProtocolError("closed"), OutcomeUnknown),
    ],
)
def test_transport_failures_are_classified_by_whether_anything_was_sent(
    exc: Exception, expected: type[Exception]
) -> None:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise exc

    client = make_client("http://x.test", transport=httpx.MockTransport(raise_it))
    with pytest.raises(expected):
        client.publish(account_for(FakeX()), "hello")


def test_read_failures_on_lookups_are_temporary_not_unknown() -> None:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow read")

    client = make_client("http://x.test", transport=httpx.MockTransport(raise_it))
    with pytest.raises(TemporaryError):
        client.fetch_metrics(account_for(FakeX()), ["1"])


# -- refresh -------------------------------------------------------------------------------


def test_refresh_with_rotating_refresh_token(fake: FakeX, client: XPublisher) -> None:
    before = datetime.now(UTC)
    tokens = client.refresh(account_for(fake))

    assert tokens.access_token == fake.access_token == "x-access-2"
    assert tokens.refresh_token == fake.refresh_token == "x-refresh-2"
    assert tokens.expires_at is not None
    assert (
        before + timedelta(seconds=7190)
        < tokens.expires_at
        <= datetime.now(UTC) + timedelta(seconds=7200)
    )
    form = fake.requests_to("/2/oauth2/token")[0].form
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "x-refresh-1",
        "client_id": "x-client-id",
    }


@pytest.mark.parametrize("mode", ["omit", "empty"])
def test_refresh_without_new_refresh_token_keeps_stored_one(mode: str) -> None:
    with FakeX(refresh_mode=mode) as fake, make_client(fake.base_url) as client:
        tokens = client.refresh(account_for(fake))
    assert tokens.access_token == "x-access-2"
    assert tokens.refresh_token is None  # None means: keep the stored refresh token


def test_refresh_with_same_refresh_token(fake: FakeX) -> None:
    fake.refresh_mode = "same"
    with make_client(fake.base_url) as client:
        tokens = client.refresh(account_for(fake))
    assert tokens.refresh_token == "x-refresh-1"


def test_confidential_client_refreshes_with_basic_auth() -> None:
    with (
        FakeX(client_secret="s3cret") as fake,
        make_client(fake.base_url, client_secret="s3cret") as client,
    ):
        tokens = client.refresh(account_for(fake))
        sent = fake.requests_to("/2/oauth2/token")[0]
    assert tokens.access_token == "x-access-2"
    assert (
        sent.headers["authorization"] == "Basic " + base64.b64encode(b"x-client-id:s3cret").decode()
    )


def test_refused_refresh_token_is_auth_error(fake: FakeX, client: XPublisher) -> None:
    with pytest.raises(AuthError, match="Value passed for the token was invalid"):
        client.refresh(account_for(fake, refresh_token="stale"))


def test_refresh_without_refresh_token_is_auth_error_without_request(
    fake: FakeX, client: XPublisher
) -> None:
    with pytest.raises(AuthError):
        client.refresh(account_for(fake, refresh_token=None))
    assert fake.requests == []


def test_metrics_map_public_metrics(fake: FakeX, client: XPublisher) -> None:
    post = fake.add_post(
        "a",
        metrics={
            "impression_count": 1000,
            "like_count": 40,
            "retweet_count": 5,
            "quote_count": 2,
            "reply_count": 7,
        },
    )

    metrics = client.fetch_metrics(account_for(fake), [post.id])[post.id]

    assert (metrics.impressions, metrics.likes, metrics.shares, metrics.comments) == (
        1000,
        40,
        7,
        7,
    )


def test_metrics_batches_250_ids_into_3_calls_and_skips_deleted(
    fake: FakeX, client: XPublisher
) -> None:
    ids = [fake.add_post(f"post {i}", metrics={"like_count": i}).id for i in range(245)]
    ids += [str(9000000000000000000 + i) for i in range(5)]  # deleted: reported in `errors`

    metrics = client.fetch_metrics(account_for(fake), ids)

    lookups = fake.requests_to("/2/tweets", "GET")
    assert [len(r.query["ids"][0].split(",")) for r in lookups] == [100, 100, 50]
    assert all(r.query["tweet.fields"] == ["public_metrics"] for r in lookups)
    assert len(metrics) == 245
    assert metrics[ids[10]].likes == 10


def test_metrics_when_every_tweet_is_gone(fake: FakeX, client: XPublisher) -> None:
    assert client.fetch_metrics(account_for(fake), ["123"]) == {}


def test_metrics_rate_limited(fake: FakeX, client: XPublisher) -> None:
    fake.rate_limit_next(datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(RateLimited):
        client.fetch_metrics(account_for(fake), ["123"])


# -- reconciliation and account check ------------------------------------------------------


def test_find_published_ignores_tco_rewrites_and_whitespace(
    fake: FakeX, client: XPublisher
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    fake.add_post("older post", created_at=since - timedelta(hours=1))
    target = fake.add_post("New  guide:\nhttps://example.com/guide?x=1 <3 & more")

    found = client.find_published(
        account_for(fake), "New guide: https://example.com/guide?x=1 <3 & more", since
    )

    assert found is not None and found.external_id == target.id
    sent = fake.requests_to(f"/2/users/{fake.user_id}/tweets")[0]
    assert sent.query["start_time"] == [since.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert sent.query["max_results"] == ["10"]


def test_find_published_returns_none_when_absent(fake: FakeX, client: XPublisher) -> None:
    fake.add_post("something else")
    assert (
        client.find_published(account_for(fake), "hello", datetime.now(UTC) - timedelta(minutes=1))
        is None
    )


def test_find_published_follows_pages(fake: FakeX, client: XPublisher) -> None:
    since = datetime.now(UTC) - timedelta(minutes=10)
    target = fake.add_post("the one", created_at=since + timedelta(seconds=1))
    for i in range(15):
        fake.add_post(f"later {i}", created_at=since + timedelta(minutes=1, seconds=i))

    found = client.find_published(account_for(fake), "the one", since)

    assert found is not None and found.external_id == target.id
    assert len(fake.requests_to(f"/2/users/{fake.user_id}/tweets")) == 2


def test_find_published_looks_up_user_id_when_unknown(fake: FakeX, client: XPublisher) -> None:
    target = fake.add_post("hi")
    found = client.find_published(
        account_for(fake, external_id=None), "hi", datetime.now(UTC) - timedelta(minutes=1)
    )
    assert found is not None and found.external_id == target.id


def test_check_account_returns_username(fake: FakeX, client: XPublisher) -> None:
    assert client.check_account(account_for(fake)) == "autopilot_test"


def test_normalise_for_match_drops_urls_entities_and_spacing() -> None:
    assert normalise_for_match("A  &amp; B\nhttps://t.co/x") == normalise_for_match(
        "A & B https://example.com"
    )


def test_malformed_metrics_items_are_skipped(fake: FakeX, client: XPublisher) -> None:
    fake.respond_next(
        200,
        {
            "data": [
                {"text": "no id"},
                {"id": "2", "public_metrics": {"like_count": "many"}},
                {"id": "3", "public_metrics": {"like_count": 4, "impression_count": None}},
            ]
        },
        path="/2/tweets",
    )
    metrics = client.fetch_metrics(account_for(fake), ["1", "2", "3"])
    assert list(metrics) == ["3"]
    assert metrics["3"].likes == 4 and metrics["3"].impressions == 0
