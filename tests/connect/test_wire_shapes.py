"""The connectors read the platforms' documented answers (tests/fixtures/wire, sources inside)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.connect import ConnectError, ConnectFailure, flows
from app.connect.clients import connector_for
from app.models import PlatformAccount
from tests.connect.conftest import LINKEDIN_CALLBACK, X_CALLBACK
from tests.fakes.oauth import click_through
from tests.wire import load, replay_next


def test_x_documented_token_answer_is_stored_with_its_lifetime(connect_runtime, two_users, fake_x, now):
    ada, _ = two_users
    params = click_through(flows.start(connect_runtime, user_id=ada, platform="twitter", session_key="k",
                                       redirect_uri=X_CALLBACK))
    documented = replay_next(fake_x, "x/oauth2_token_200", path="/2/oauth2/token")
    fake_x.access_token = documented["body"]["access_token"]  # so users/me accepts it

    connected = flows.finish(connect_runtime, user_id=ada, platform="twitter", session_key="k", params=params,
                             actor="user")

    with connect_runtime.session_factory() as session:
        account = session.get(PlatformAccount, connected.account_id)
        creds = connect_runtime.vault.credentials(account)
    assert creds.access_token == documented["body"]["access_token"]
    assert creds.refresh_token == documented["body"]["refresh_token"]
    assert account.expires_at == now + timedelta(seconds=7200)


def test_linkedin_documented_token_and_userinfo_answers(connect_runtime, two_users, fake_linkedin):
    ada, _ = two_users
    params = click_through(flows.start(connect_runtime, user_id=ada, platform="linkedin", session_key="k",
                                       redirect_uri=LINKEDIN_CALLBACK))
    replay_next(fake_linkedin, "linkedin/oauth_access_token_200", path="/oauth/v2/accessToken")
    replay_next(fake_linkedin, "linkedin/userinfo_200", path="/v2/userinfo")

    connected = flows.finish(connect_runtime, user_id=ada, platform="linkedin", session_key="k", params=params,
                             actor="user")

    assert connected.handle == "John Doe"
    with connect_runtime.session_factory() as session:
        account = session.get(PlatformAccount, connected.account_id)
    assert account.external_id == "urn:li:person:782bbtaQ"


def test_x_documented_revocation_answer_counts_as_revoked(connect_runtime, fake_x):
    connector = connector_for(connect_runtime.settings, "twitter")
    replay_next(fake_x, "x/oauth2_revoke_200", path="/2/oauth2/revoke")
    connector.revoke("an-access-token", None)
    assert fake_x.requests_to("/2/oauth2/revoke")[-1].form == {"token": "an-access-token",
                                                               "token_type_hint": "access_token"}


@pytest.mark.parametrize("platform, name, callback", [
    ("twitter", "x/authorize_denied_redirect", X_CALLBACK),
    ("linkedin", "linkedin/authorization_cancelled_redirect", LINKEDIN_CALLBACK)])
def test_documented_cancel_reads_as_a_denied_consent(connect_runtime, two_users, platform, name, callback):
    ada, _ = two_users
    url = flows.start(connect_runtime, user_id=ada, platform=platform, session_key="k", redirect_uri=callback)
    answer = click_through(url, decision="cancel")
    query = {k: v.replace("@STATE@", answer["state"]) for k, v in load(name)["query"].items()}
    assert answer == query  # the fake's Cancel sends what the docs say

    with pytest.raises(ConnectError) as excinfo:
        flows.finish(connect_runtime, user_id=ada, platform=platform, session_key="k", params=query, actor="user")
    assert excinfo.value.failure == ConnectFailure.DENIED
