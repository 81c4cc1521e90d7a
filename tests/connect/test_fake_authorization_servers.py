"""The fakes' authorisation servers refuse what X and LinkedIn refuse (a fake that accepts anything
would prove nothing about the flow tested against it)."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.oauth import click_through, s256
from tests.fakes.x import FakeX

CALLBACK = "https://portal.example.com/connect/twitter/callback"
VERIFIER = "v" * 50


class Clock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def x_consent_url(fake: FakeX, **overrides: str) -> str:
    params = {"response_type": "code", "client_id": "x-client", "redirect_uri": CALLBACK,
              "scope": "tweet.read users.read", "state": "s1", "code_challenge": s256(VERIFIER),
              "code_challenge_method": "S256", **overrides}
    return str(httpx.URL(fake.authorize_url, params=params))


def redeem(fake: FakeX, code: str, *, auth: tuple[str, str] | None = ("x-client", "x-secret"),
           **overrides: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "code_verifier": VERIFIER, **overrides}
    return httpx.post(f"{fake.base_url}/2/oauth2/token", data=form, auth=auth)


@pytest.fixture
def oauth_clock() -> Clock:
    return Clock()


@pytest.fixture
def fake_x(oauth_clock: Clock):
    with FakeX(client_id="x-client", client_secret="x-secret", redirect_uris=[CALLBACK],
               oauth_clock=oauth_clock) as fake:
        yield fake


@pytest.mark.parametrize("overrides, problem", [
    ({"redirect_uri": "https://evil.example.com/cb"}, "is not registered"),
    ({"client_id": "someone-else"}, "unknown client_id"),
    ({"code_challenge_method": "", "code_challenge": ""}, "code_challenge"),
    ({"scope": "tweet.read dm.everything"}, "invalid scope"),
])
def test_x_consent_page_refuses_a_bad_request_without_redirecting(fake_x, overrides, problem):
    page = httpx.get(x_consent_url(fake_x, **overrides))
    assert page.status_code == 400 and "location" not in page.headers
    assert problem in page.text


def test_x_code_is_valid_once_for_thirty_seconds_with_its_verifier_and_client(fake_x, oauth_clock):
    code = click_through(x_consent_url(fake_x))["code"]
    assert redeem(fake_x, code, auth=("x-client", "wrong")).status_code == 401
    assert redeem(fake_x, code, auth=None, client_id="x-client").status_code == 401  # confidential: Basic
    assert "code verifier" in redeem(fake_x, code, code_verifier="w" * 50).text
    assert "code_verifier" in redeem(fake_x, code, code_verifier="").text
    assert "redirect_uri" in redeem(fake_x, code, redirect_uri=CALLBACK + "x").text

    ok = redeem(fake_x, code)
    assert ok.status_code == 200 and ok.json()["access_token"] == fake_x.access_token
    token = ok.json()["access_token"]
    again = redeem(fake_x, code)
    assert again.status_code == 400 and "already redeemed" in again.text
    assert fake_x.access_token != token  # a replayed code withdraws what it yielded (RFC 6749 4.1.2)

    late = click_through(x_consent_url(fake_x))["code"]
    oauth_clock.seconds += 31
    assert "expired" in redeem(fake_x, late).text


def test_x_cancel_sends_access_denied_with_the_state(fake_x):
    assert click_through(x_consent_url(fake_x), decision="cancel") == {"error": "access_denied", "state": "s1"}


def test_x_revocation_needs_the_client_and_stops_the_token(fake_x):
    code = click_through(x_consent_url(fake_x))["code"]
    token = redeem(fake_x, code).json()["access_token"]
    me = f"{fake_x.base_url}/2/users/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    url = f"{fake_x.base_url}/2/oauth2/revoke"
    assert httpx.post(url, data={"token": token}, auth=("x-client", "nope")).status_code == 401

    answer = httpx.post(url, data={"token": token, "token_type_hint": "access_token"}, auth=("x-client", "x-secret"))

    assert answer.json() == {"revoked": True}
    assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_linkedin_code_needs_the_client_secret_in_the_form_and_lives_thirty_minutes(oauth_clock):
    callback = "https://portal.example.com/connect/linkedin/callback"
    with FakeLinkedIn(client_id="li", client_secret="li-secret", redirect_uris=[callback],
                      oauth_clock=oauth_clock) as fake:
        url = str(httpx.URL(f"{fake.base_url}/oauth/v2/authorization", params={
            "response_type": "code", "client_id": "li", "redirect_uri": callback,
            "scope": "openid profile w_member_social", "state": "s"}))
        assert click_through(url, decision="cancel")["error"] == "user_cancelled_authorize"
        token_url = f"{fake.base_url}/oauth/v2/accessToken"
        form = {"grant_type": "authorization_code", "redirect_uri": callback, "client_id": "li"}
        code = click_through(url)["code"]
        assert httpx.post(token_url, data={**form, "code": code, "client_secret": "bad"}).status_code == 401
        assert httpx.post(token_url, data={**form, "code": code, "client_secret": "li-secret"}).status_code == 200
        assert httpx.post(token_url, data={**form, "code": code, "client_secret": "li-secret"}).status_code == 400
        late = click_through(url)["code"]
        oauth_clock.seconds += 30 * 60 + 1
        refused = httpx.post(token_url, data={**form, "code": late, "client_secret": "li-secret"})
        assert refused.status_code == 400 and "expired" in refused.text
