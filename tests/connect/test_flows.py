"""Connecting and disconnecting accounts through the platforms' consent screens (the fakes'),
without Flask: every way a consent can fail leaves nothing stored and says why."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import SettableClock
from app.connect import ConnectError, ConnectFailure, flows
from app.connect.clients import connectable_platforms
from app.errors import NotFound
from app.models import AccountStatus, AuditLog, ConnectFlow, PlatformAccount, Post, PostStatus
from app.runtime import Runtime
from tests.connect.conftest import LINKEDIN_CALLBACK, X_CALLBACK
from tests.factories import add_post
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.oauth import click_through, s256
from tests.fakes.x import FakeX

SESSION = "browser-session-key-1"


def start_x(runtime: Runtime, user_id: int, session_key: str = SESSION) -> str:
    return flows.start(runtime, user_id=user_id, platform="twitter", session_key=session_key,
                       redirect_uri=X_CALLBACK)


def finish_x(runtime: Runtime, user_id: int, params: dict[str, str], session_key: str = SESSION):
    return flows.finish(runtime, user_id=user_id, platform="twitter", session_key=session_key,
                        params=params, actor=f"user:{user_id}")


def accounts(sessions: sessionmaker[Session]) -> list[PlatformAccount]:
    with sessions() as session:
        return list(session.scalars(select(PlatformAccount).order_by(PlatformAccount.id)))


def refused(excinfo: pytest.ExceptionInfo[ConnectError], failure: ConnectFailure) -> str:
    assert excinfo.value.failure == failure, excinfo.value
    return excinfo.value.message


def test_the_registry_says_which_platforms_connect_by_oauth():
    assert connectable_platforms() == ("twitter", "linkedin")


def test_x_consent_stores_the_tokens_x_issued_and_the_account_x_names(
        connect_runtime, sessions, two_users, fake_x: FakeX, now):
    ada, _ = two_users
    url = start_x(connect_runtime, ada)

    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(fake_x.authorize_url)
    assert query["code_challenge_method"] == "S256"
    assert query["scope"].split() == ["tweet.read", "tweet.write", "users.read", "offline.access", "media.write"]
    assert query["redirect_uri"] == X_CALLBACK
    # Only the challenge travels; the verifier stays in the database, encrypted.
    with sessions() as session:
        flow = session.scalars(select(ConnectFlow)).one()
        verifier = connect_runtime.vault.decrypt(flow.code_verifier_encrypted)
    assert s256(verifier) == query["code_challenge"] and verifier not in url
    assert query["state"] not in flow.state_hash

    connected = finish_x(connect_runtime, ada, click_through(url))

    assert (connected.platform, connected.handle, connected.reconnected) == ("twitter", "@autopilot_test", False)
    [account] = accounts(sessions)
    creds = connect_runtime.vault.credentials(account)
    assert creds.access_token == fake_x.issued_access_tokens[-1] == fake_x.access_token
    assert creds.refresh_token == fake_x.refresh_token
    assert (account.user_id, account.external_id, account.status) == (ada, fake_x.user_id, AccountStatus.ACTIVE)
    assert account.expires_at == now + timedelta(seconds=7200)
    token_request = fake_x.requests_to("/2/oauth2/token")[-1]
    assert token_request.headers["authorization"].startswith("Basic ")
    assert token_request.form["code_verifier"] == verifier
    with sessions() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "account.connected")).one()
    assert (audit.actor, audit.details["handle"]) == (f"user:{ada}", "@autopilot_test")


def test_linkedin_consent_stores_the_member_from_userinfo(
        connect_runtime, sessions, two_users, fake_linkedin: FakeLinkedIn):
    ada, _ = two_users
    url = flows.start(connect_runtime, user_id=ada, platform="linkedin", session_key=SESSION,
                      redirect_uri=LINKEDIN_CALLBACK)
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["openid profile w_member_social"]
    assert "code_challenge" not in query

    connected = flows.finish(connect_runtime, user_id=ada, platform="linkedin", session_key=SESSION,
                             params=click_through(url), actor="user:1")

    assert connected.handle == "Ada Lovelace"
    [account] = accounts(sessions)
    assert account.external_id == fake_linkedin.member_urn == "urn:li:person:782bbtaQ"
    assert connect_runtime.vault.credentials(account).access_token == fake_linkedin.access_token
    assert account.refresh_token_encrypted is None  # LinkedIn gives most apps no refresh token
    form = fake_linkedin.requests_to("/oauth/v2/accessToken")[-1].form
    assert (form["client_id"], form["client_secret"], form["redirect_uri"]) == (
        "li-client", "li-secret", LINKEDIN_CALLBACK)


@pytest.mark.parametrize("platform, error", [("twitter", "access_denied"), ("linkedin", "user_cancelled_authorize")])
def test_a_cancelled_consent_stores_nothing_and_says_so(connect_runtime, sessions, two_users, platform, error):
    ada, _ = two_users
    callback = X_CALLBACK if platform == "twitter" else LINKEDIN_CALLBACK
    url = flows.start(connect_runtime, user_id=ada, platform=platform, session_key=SESSION, redirect_uri=callback)
    params = click_through(url, decision="cancel")
    assert params["error"] == error

    with pytest.raises(ConnectError) as excinfo:
        flows.finish(connect_runtime, user_id=ada, platform=platform, session_key=SESSION, params=params,
                     actor="user")

    assert "cancelled" in refused(excinfo, ConnectFailure.DENIED)
    assert accounts(sessions) == []


def test_a_state_this_browser_did_not_start_is_refused(connect_runtime, sessions, two_users, fake_x):
    ada, bob = two_users
    params = click_through(start_x(connect_runtime, ada))

    for user, session_key, state in ((ada, SESSION, "forged-state"), (ada, "another-browser", params["state"]),
                                     (bob, SESSION, params["state"])):
        with pytest.raises(ConnectError) as excinfo:
            finish_x(connect_runtime, user, {**params, "state": state}, session_key=session_key)
        assert "does not belong" in refused(excinfo, ConnectFailure.BAD_STATE)
    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, {"code": params["code"]})
    refused(excinfo, ConnectFailure.BAD_STATE)

    assert accounts(sessions) == []
    assert fake_x.requests_to("/2/oauth2/token") == []  # the code was never even tried
    finish_x(connect_runtime, ada, params)  # the rightful browser still can
    assert len(accounts(sessions)) == 1


def test_a_state_is_used_once(connect_runtime, sessions, two_users):
    ada, _ = two_users
    params = click_through(start_x(connect_runtime, ada))
    finish_x(connect_runtime, ada, params)

    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, params)

    assert "already used" in refused(excinfo, ConnectFailure.REUSED_STATE)
    assert len(accounts(sessions)) == 1


def test_a_consent_answered_after_ten_minutes_is_refused(connect_runtime, sessions, two_users, clock: SettableClock):
    ada, _ = two_users
    params = click_through(start_x(connect_runtime, ada))
    clock.now += flows.DEFAULT_FLOW_LIFETIME

    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, params)

    assert "10 minutes" in refused(excinfo, ConnectFailure.EXPIRED)
    clock.now -= timedelta(minutes=5)  # an expired state stays used up
    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, params)
    refused(excinfo, ConnectFailure.REUSED_STATE)
    assert accounts(sessions) == []


def test_a_code_is_redeemed_once(connect_runtime, sessions, two_users, fake_x):
    ada, _ = two_users
    first = click_through(start_x(connect_runtime, ada))
    finish_x(connect_runtime, ada, first)
    stored = connect_runtime.vault.credentials(accounts(sessions)[0]).access_token
    second = click_through(start_x(connect_runtime, ada))

    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, {**second, "code": first["code"]})

    assert "refused the authorisation code" in refused(excinfo, ConnectFailure.EXCHANGE_FAILED)
    [account] = accounts(sessions)
    assert connect_runtime.vault.credentials(account).access_token == stored


def test_a_code_exchanged_with_another_verifier_is_refused(connect_runtime, sessions, two_users, fake_x):
    ada, _ = two_users
    params = click_through(start_x(connect_runtime, ada))
    with sessions.begin() as session:  # as if the verifier were lost or swapped on the way
        flow = session.scalars(select(ConnectFlow)).one()
        flow.code_verifier_encrypted = connect_runtime.vault.encrypt("x" * 64)

    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, params)

    assert "code verifier" in refused(excinfo, ConnectFailure.EXCHANGE_FAILED)
    assert accounts(sessions) == []


def test_a_code_exchanged_without_its_verifier_is_refused(connect_runtime, sessions, two_users):
    ada, _ = two_users
    params = click_through(start_x(connect_runtime, ada))
    with sessions.begin() as session:
        session.scalars(select(ConnectFlow)).one().code_verifier_encrypted = None

    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, params)

    assert "code_verifier" in refused(excinfo, ConnectFailure.EXCHANGE_FAILED)
    assert accounts(sessions) == []


def test_a_token_endpoint_that_fails_leaves_nothing_and_no_crash(connect_runtime, sessions, two_users, fake_x):
    ada, _ = two_users
    params = click_through(start_x(connect_runtime, ada))
    fake_x.respond_next(503, b"<html>over capacity</html>", path="/2/oauth2/token")

    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, ada, params)

    assert "503" in refused(excinfo, ConnectFailure.EXCHANGE_FAILED)
    assert accounts(sessions) == []


def test_an_account_connected_to_another_user_is_refused(connect_runtime, sessions, two_users, fake_x):
    ada, bob = two_users
    finish_x(connect_runtime, ada, click_through(start_x(connect_runtime, ada)))

    with pytest.raises(ConnectError) as excinfo:
        finish_x(connect_runtime, bob, click_through(start_x(connect_runtime, bob)))

    assert "another user" in refused(excinfo, ConnectFailure.TAKEN)
    assert [a.user_id for a in accounts(sessions)] == [ada]
    with sessions() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "account.connect_refused")).one()
    assert audit.user_id == bob


def test_reconnecting_replaces_the_tokens_and_clears_needs_reauth(connect_runtime, sessions, two_users, fake_x):
    ada, _ = two_users
    finish_x(connect_runtime, ada, click_through(start_x(connect_runtime, ada)))
    with sessions.begin() as session:
        account = session.scalars(select(PlatformAccount)).one()
        account.status = AccountStatus.NEEDS_REAUTH
        account.reauth_notified_at = connect_runtime.now()
        old = connect_runtime.vault.credentials(account).access_token

    connected = finish_x(connect_runtime, ada, click_through(start_x(connect_runtime, ada)))

    assert connected.reconnected
    [account] = accounts(sessions)
    assert (account.status, account.reauth_notified_at) == (AccountStatus.ACTIVE, None)
    new = connect_runtime.vault.credentials(account).access_token
    assert new != old and new == fake_x.access_token


def test_a_platform_without_credentials_cannot_be_started(runtime, two_users):
    ada, _ = two_users
    with pytest.raises(ConnectError) as excinfo:
        start_x(runtime, ada)
    assert "X_CLIENT_ID" in refused(excinfo, ConnectFailure.NOT_CONFIGURED)
    with pytest.raises(NotFound):
        flows.start(runtime, user_id=ada, platform="myspace", session_key=SESSION, redirect_uri=X_CALLBACK)


def test_disconnect_revokes_at_x_deletes_the_tokens_and_cancels_future_posts(
        connect_runtime, sessions, two_users, fake_x, now):
    ada, bob = two_users
    finish_x(connect_runtime, ada, click_through(start_x(connect_runtime, ada)))
    [account] = accounts(sessions)
    token = connect_runtime.vault.credentials(account)
    future = [add_post(sessions, ada, now + timedelta(hours=h), status=status)
              for h, status in ((1, PostStatus.SCHEDULED), (2, PostStatus.QUEUED), (3, PostStatus.NEEDS_REVIEW))]
    kept = [add_post(sessions, ada, now - timedelta(hours=1), status=PostStatus.PUBLISHED),
            add_post(sessions, ada, now + timedelta(hours=1), platform="linkedin"),
            add_post(sessions, bob, now + timedelta(hours=1))]

    with pytest.raises(NotFound):  # another user's account id: nothing happens
        flows.disconnect(connect_runtime, user_id=bob, account_id=account.id, actor=f"user:{bob}")
    assert fake_x.revoked == []

    result = flows.disconnect(connect_runtime, user_id=ada, account_id=account.id, actor=f"user:{ada}")

    assert (result.revoked, result.cancelled_posts) == (True, 3)
    assert set(fake_x.revoked) == {token.access_token, token.refresh_token}
    assert accounts(sessions) == []
    with sessions() as session:
        statuses = dict(session.execute(select(Post.id, Post.status)).all())
        reasons = {p.last_error for p in session.scalars(select(Post).where(Post.id.in_(future)))}
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "account.disconnected")).one()
        cancel_rows = session.scalar(select(func.count()).where(AuditLog.action == "post.cancelled",
                                                                AuditLog.actor == f"user:{ada}"))
    assert [statuses[i] for i in future] == [PostStatus.CANCELLED] * 3
    assert [statuses[i] for i in kept] == [PostStatus.PUBLISHED, PostStatus.SCHEDULED, PostStatus.SCHEDULED]
    assert reasons == {"X account disconnected by its owner"}
    assert (audit.actor, audit.details["revoked"], audit.details["cancelled_posts"]) == (f"user:{ada}", True, 3)
    assert cancel_rows == 3


def test_disconnect_still_deletes_when_x_does_not_confirm_the_revocation(connect_runtime, sessions, two_users,
                                                                        fake_x):
    ada, _ = two_users
    finish_x(connect_runtime, ada, click_through(start_x(connect_runtime, ada)))
    [account] = accounts(sessions)
    fake_x.respond_next(503, {"title": "Service Unavailable"}, path="/2/oauth2/revoke")

    result = flows.disconnect(connect_runtime, user_id=ada, account_id=account.id, actor="user")

    assert result.revoked is False
    assert accounts(sessions) == []
    with sessions() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "account.disconnected")).one()
    assert "503" in audit.details["revoke_error"]


def test_disconnecting_linkedin_deletes_without_a_revocation_call(connect_runtime, sessions, two_users,
                                                                  fake_linkedin):
    ada, _ = two_users
    url = flows.start(connect_runtime, user_id=ada, platform="linkedin", session_key=SESSION,
                      redirect_uri=LINKEDIN_CALLBACK)
    flows.finish(connect_runtime, user_id=ada, platform="linkedin", session_key=SESSION,
                 params=click_through(url), actor="user")
    [account] = accounts(sessions)
    before = len(fake_linkedin.requests)

    result = flows.disconnect(connect_runtime, user_id=ada, account_id=account.id, actor="user")

    assert result.revoked is None and accounts(sessions) == []
    assert len(fake_linkedin.requests) == before


def test_disconnect_deletes_an_account_whose_token_no_longer_decrypts(connect_runtime, sessions, two_users,
                                                                      fake_x):
    ada, _ = two_users
    finish_x(connect_runtime, ada, click_through(start_x(connect_runtime, ada)))
    with sessions.begin() as session:  # encrypted under a key since rotated away
        session.scalars(select(PlatformAccount)).one().access_token_encrypted = "gAAAAAB-not-decryptable"
    [account] = accounts(sessions)

    result = flows.disconnect(connect_runtime, user_id=ada, account_id=account.id, actor="user")

    assert result.revoked is False and fake_x.revoked == []
    assert accounts(sessions) == []


def test_consents_expired_over_a_day_ago_are_pruned(connect_runtime, sessions, two_users, clock: SettableClock):
    ada, _ = two_users
    start_x(connect_runtime, ada)  # abandoned on X's page
    clock.now += flows.DEFAULT_FLOW_LIFETIME + timedelta(hours=1)
    start_x(connect_runtime, ada, session_key="another-browser")  # (prunes only this user's, when they return)
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(ConnectFlow)) == 1
    clock.now += flows.DEFAULT_FLOW_LIFETIME + flows.DEFAULT_FLOW_RETENTION
    with sessions.begin() as session:
        assert flows.prune_flows(session, clock.now) == 1
        assert session.scalar(select(func.count()).select_from(ConnectFlow)) == 0
