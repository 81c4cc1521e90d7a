"""LinkedInPublisher against a local fake of LinkedIn's REST and OAuth APIs over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.providers.base import AccountCredentials
from app.providers.errors import (
    AuthError,
    LookupUnsupported,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.providers.linkedin import (
    LITTLE_RESERVED,
    LinkedInPublisher,
    escape_little_text,
    unescape_little_text,
)
from tests.fakes.linkedin import FakeLinkedIn, first_unescaped_reserved
from tests.fakes.platform import unused_base_url

READ_TIMEOUT = 0.5
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as server:
        yield server


def make_client(base_url: str, *, version: str = "202510", **kwargs: object) -> LinkedInPublisher:
    kwargs.setdefault("timeout", httpx.Timeout(READ_TIMEOUT, connect=2.0))
    return LinkedInPublisher(
        base_url,
        base_url,
        version,
        "li-client-id",
        "li-client-secret",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(fake: FakeLinkedIn) -> Iterator[LinkedInPublisher]:
    with make_client(fake.base_url) as publisher:
        yield publisher


def account_for(fake: FakeLinkedIn, **overrides: object) -> AccountCredentials:
    values: dict[str, object] = {
        "account_id": 7,
        "platform": "linkedin",
        "external_id": fake.member_urn,
        "access_token": fake.access_token,
        "refresh_token": fake.refresh_token,
        "expires_at": datetime.now(UTC) + timedelta(days=30),
    }
    values.update(overrides)
    return AccountCredentials(**values)  # type: ignore[arg-type]


# -- little text -----------------------------------------------------------------------------


def test_escape_little_text_escapes_every_reserved_character_once() -> None:
    assert escape_little_text(r"a\b (c) #d @e") == r"a\\b \(c\) \#d \@e"
    escaped = escape_little_text(LITTLE_RESERVED)
    assert escaped == "".join("\\" + c for c in LITTLE_RESERVED)
    assert first_unescaped_reserved(escaped) is None


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        r"C:\path\to\file (v2) [draft] {x} <y> #tag @me *bold* _it_ ~strike~ a|b",
        "\\(already looks escaped\\)",
        "trailing backslash \\",
        "emoji \U0001f680 and accents éà",
    ],
)
def test_little_text_round_trip(text: str) -> None:
    escaped = escape_little_text(text)
    assert unescape_little_text(escaped) == text
    assert first_unescaped_reserved(escaped) is None


# -- publish ---------------------------------------------------------------------------------


def test_publish_sends_documented_headers_and_body(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    result = client.publish(account_for(fake), "Big news (really) #launch")

    urn = fake.posts[0].urn
    assert result.external_id == urn
    assert result.url == f"https://www.linkedin.com/feed/update/{urn}"
    sent = fake.requests_to("/rest/posts", "POST")[0]
    assert sent.headers["authorization"] == "Bearer li-access-1"
    assert sent.headers["linkedin-version"] == "202510"
    assert sent.headers["x-restli-protocol-version"] == "2.0.0"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "author": fake.member_urn,
        "commentary": r"Big news \(really\) {hashtag|\#|launch}",
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


def test_fake_refuses_unescaped_reserved_characters(fake: FakeLinkedIn) -> None:
    """The guard the escaping exists for: LinkedIn itself would silently truncate here."""
    response = httpx.post(
        f"{fake.base_url}/rest/posts",
        headers={
            "Authorization": f"Bearer {fake.access_token}",
            "LinkedIn-Version": "202510",
            "X-Restli-Protocol-Version": "2.0.0",
        },
        json={
            "author": fake.member_urn,
            "commentary": "cut (here)",
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        },
    )
    assert response.status_code == 400
    assert fake.posts == []


def test_publish_without_author_urn_derives_it_from_userinfo(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    result = client.publish(account_for(fake, external_id=None), "hello")
    assert result.external_id == fake.posts[0].urn
    assert fake.posts[0].author == fake.member_urn


def test_sunset_version_is_permanent_and_names_the_setting(fake: FakeLinkedIn) -> None:
    with make_client(fake.base_url, version="202301") as client:
        with pytest.raises(PermanentError, match="LINKEDIN_VERSION"):
            client.publish(account_for(fake), "hello")
    assert fake.posts == []


def test_version_must_look_like_yyyymm() -> None:
    with pytest.raises(ValueError, match="YYYYMM"):
        LinkedInPublisher("http://a", "http://b", "2025-10", "id", "secret")


def test_too_long_commentary_is_permanent_without_request(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    with pytest.raises(PermanentError, match="3000"):
        client.publish(account_for(fake), "a" * 3001)
    assert fake.requests == []


def test_3000_characters_of_reserved_text_still_fits(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    """The limit applies before escaping: escaping doubles the length on the wire."""
    client.publish(account_for(fake), "(" * 3000)
    assert len(fake.posts) == 1


def test_rate_limit_uses_retry_after(fake: FakeLinkedIn) -> None:
    fake.respond_next(
        429, {"status": 429, "message": "Resource level throttle"}, headers={"Retry-After": "120"}
    )
    with make_client(fake.base_url, clock=lambda: NOW) as client:
        with pytest.raises(RateLimited) as caught:
            client.publish(account_for(fake, expires_at=None), "hello")
    assert caught.value.reset_at == NOW + timedelta(seconds=120)


def test_rate_limit_without_retry_after_has_no_reset(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    fake.respond_next(429, {"status": 429, "message": "Application level throttle"})
    with pytest.raises(RateLimited) as caught:
        client.publish(account_for(fake), "hello")
    assert caught.value.reset_at is None


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_temporary(
    fake: FakeLinkedIn, client: LinkedInPublisher, status: int
) -> None:
    fake.respond_next(status, {"status": status})
    with pytest.raises(TemporaryError):
        client.publish(account_for(fake), "hello")


def test_500_on_create_is_outcome_unknown(fake: FakeLinkedIn, client: LinkedInPublisher) -> None:
    fake.respond_next(500, {"status": 500, "message": "Internal Server Error"})
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello")


def test_revoked_token_is_auth_error_then_refresh_succeeds(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    account = account_for(fake)
    fake.revoke_access_token()
    with pytest.raises(AuthError, match="INVALID_ACCESS_TOKEN"):
        client.publish(account, "hello")

    account.access_token = client.refresh(account).access_token
    assert client.publish(account, "hello").external_id == fake.posts[0].urn


def test_expired_token_fails_without_request(fake: FakeLinkedIn, client: LinkedInPublisher) -> None:
    account = account_for(
        fake, refresh_token=None, expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    with pytest.raises(AuthError, match="re-authorise"):
        client.publish(account, "hello")
    assert fake.requests == []


@pytest.mark.parametrize("status", [400, 403, 422])
def test_client_errors_are_permanent_with_detail(
    fake: FakeLinkedIn, client: LinkedInPublisher, status: int
) -> None:
    fake.respond_next(status, {"status": status, "code": "REFUSED", "message": f"refused {status}"})
    with pytest.raises(PermanentError, match=f"refused {status}"):
        client.publish(account_for(fake), "hello")


def test_duplicate_post_is_permanent(fake: FakeLinkedIn, client: LinkedInPublisher) -> None:
    client.publish(account_for(fake), "same")
    with pytest.raises(PermanentError, match="duplicate"):
        client.publish(account_for(fake), "same")


def test_missing_restli_id_is_outcome_unknown(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    fake.respond_next(201, b"", path="/rest/posts")
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello")


def test_read_timeout_is_outcome_unknown_and_post_exists(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    fake.hang_next(path="/rest/posts")
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello (world)")

    found = client.find_published(account_for(fake), "hello (world)", since)
    assert found is not None and found.external_id == fake.posts[0].urn


def test_dropped_connection_after_sending_is_outcome_unknown(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    fake.drop_next(path="/rest/posts")
    with pytest.raises(OutcomeUnknown):
        client.publish(account_for(fake), "hello")
    assert len(fake.posts) == 1


def test_connection_refused_is_temporary() -> None:
    with make_client(unused_base_url()) as client:
        with pytest.raises(TemporaryError):
            client.publish(account_for(FakeLinkedIn()), "hello")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("dns"), TemporaryError),
        (httpx.ConnectTimeout("slow"), TemporaryError),
        (httpx.ReadTimeout("slow"), OutcomeUnknown),
        (httpx.ReadError("reset"), OutcomeUnknown),
        (httpx.WriteError("pipe"), OutcomeUnknown),
        (httpx.RemoteProtocolError("closed"), OutcomeUnknown),
    ],
)
def test_transport_failures_on_create(exc: Exception, expected: type[Exception]) -> None:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise exc

    with make_client("http://li.test", transport=httpx.MockTransport(raise_it)) as client:
        with pytest.raises(expected):
            client.publish(account_for(FakeLinkedIn()), "hello")


# -- refresh -----------------------------------------------------------------------------------


def test_refresh_returns_60_day_token_and_refresh_expiry(fake: FakeLinkedIn) -> None:
    with make_client(fake.base_url, clock=lambda: NOW) as client:
        tokens = client.refresh(account_for(fake))

    assert tokens.access_token == fake.access_token == "li-access-2"
    assert tokens.refresh_token == "li-refresh-1"  # LinkedIn does not rotate refresh tokens
    assert tokens.expires_at == NOW + timedelta(seconds=5184000)
    assert tokens.refresh_expires_at == NOW + timedelta(seconds=31000000)
    sent = fake.requests_to("/oauth/v2/accessToken")[0]
    assert sent.form == {
        "grant_type": "refresh_token",
        "refresh_token": "li-refresh-1",
        "client_id": "li-client-id",
        "client_secret": "li-client-secret",
    }


def test_refresh_with_rotating_refresh_token() -> None:
    with FakeLinkedIn(refresh_mode="rotate") as fake, make_client(fake.base_url) as client:
        tokens = client.refresh(account_for(fake))
    assert tokens.refresh_token == "li-refresh-2"


def test_refresh_response_without_refresh_token_keeps_stored_one() -> None:
    with FakeLinkedIn(refresh_mode="omit") as fake, make_client(fake.base_url) as client:
        tokens = client.refresh(account_for(fake))
    assert tokens.refresh_token is None


def test_invalid_grant_is_auth_error(fake: FakeLinkedIn, client: LinkedInPublisher) -> None:
    with pytest.raises(AuthError, match="invalid_grant"):
        client.refresh(account_for(fake, refresh_token="revoked"))


def test_metrics_one_call_per_post_per_metric(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    share = fake.add_post(
        "a", analytics={"IMPRESSION": 900, "REACTION": 30, "COMMENT": 4, "RESHARE": 2}
    )
    ugc = fake.add_post("b", kind="ugcPost", analytics={"IMPRESSION": 50, "REACTION": 1})

    metrics = client.fetch_metrics(account_for(fake), [share.urn, ugc.urn])

    assert metrics[share.urn].impressions == 900
    assert (metrics[share.urn].likes, metrics[share.urn].comments, metrics[share.urn].shares) == (
        30,
        4,
        2,
    )
    assert (metrics[ugc.urn].impressions, metrics[ugc.urn].likes) == (50, 1)
    calls = fake.requests_to("/rest/memberCreatorPostAnalytics")
    assert len(calls) == 8
    assert calls[0].raw_query == (
        f"q=entity&entity=(share:urn%3Ali%3Ashare%3A{share.urn.rsplit(':', 1)[1]})"
        "&queryType=IMPRESSION&aggregation=TOTAL"
    )
    assert "entity=(ugc:urn%3Ali%3AugcPost%3A" in calls[4].raw_query
    assert all(c.headers["linkedin-version"] == "202510" for c in calls)


def test_metrics_skip_deleted_posts(fake: FakeLinkedIn, client: LinkedInPublisher) -> None:
    assert client.fetch_metrics(account_for(fake), ["urn:li:share:1"]) == {}


def test_metrics_invalid_json_is_temporary(fake: FakeLinkedIn, client: LinkedInPublisher) -> None:
    post = fake.add_post("a")
    fake.respond_next(200, b"{not json", path="/rest/memberCreatorPostAnalytics")
    with pytest.raises(TemporaryError):
        client.fetch_metrics(account_for(fake), [post.urn])


# -- reconciliation and account ---------------------------------------------------------------


def test_find_published_matches_unescaped_commentary(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    fake.add_post(
        "old (same text)", created_ms=int((since - timedelta(hours=2)).timestamp() * 1000)
    )
    assert client.find_published(account_for(fake), "old (same text)", since) is None

    target = fake.add_post("New #post (with) @chars")
    found = client.find_published(account_for(fake), "New #post  (with) @chars", since)
    assert found is not None and found.external_id == target.urn
    sent = fake.requests_to("/rest/posts", "GET")[-1]
    assert sent.query["author"] == [fake.member_urn]
    assert sent.headers["x-restli-method"] == "FINDER"


def test_find_published_without_read_permission_is_not_implemented() -> None:
    with FakeLinkedIn(posts_readable=False) as fake, make_client(fake.base_url) as client:
        with pytest.raises(LookupUnsupported):
            client.find_published(account_for(fake), "hello", datetime.now(UTC))


def test_author_urn_and_check_account_from_userinfo(
    fake: FakeLinkedIn, client: LinkedInPublisher
) -> None:
    assert client.author_urn(fake.access_token) == "urn:li:person:782bbtaQ"
    assert client.check_account(account_for(fake)) == "Ada Lovelace (urn:li:person:782bbtaQ)"
    userinfo = fake.requests_to("/v2/userinfo")[0]
    assert userinfo.headers["authorization"] == f"Bearer {fake.access_token}"
