"""The accounts page and the connect routes, in-process against the X and LinkedIn fakes: a user
clicks through each platform's consent page and comes back connected; every failure is a page
that says why, with nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.models import AccountStatus, AuditLog, Base, PlatformAccount
from app.users import create_user
from portal import create_app
from portal.ext import EXTENSION_KEY
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.oauth import click_through
from tests.fakes.x import FakeX
from tests.portal.conftest import BASE_URL, SECRET_KEY, TestUser, csrf_token, portal_db, signed_in

X_CALLBACK = f"{BASE_URL}/connect/twitter/callback"
LINKEDIN_CALLBACK = f"{BASE_URL}/connect/linkedin/callback"
KEY = generate_key()


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with FakeX(client_id="x-client", client_secret="x-secret", redirect_uris=[X_CALLBACK]) as fake:
        yield fake


@pytest.fixture
def fake_linkedin() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn(client_id="li-client", client_secret="li-secret", redirect_uris=[LINKEDIN_CALLBACK]) as fake:
        yield fake


@pytest.fixture
def portal_settings(tmp_path, fake_x, fake_linkedin) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(database_url=f"sqlite:///{tmp_path / 'portal.db'}", secret_key=SECRET_KEY,
                    session_cookie_secure=False, portal_base_url=BASE_URL, token_encryption_keys=(KEY,),
                    x_client_id="x-client", x_client_secret="x-secret", x_api_base_url=fake_x.base_url,
                    x_authorize_url=fake_x.authorize_url, linkedin_client_id="li-client",
                    linkedin_client_secret="li-secret", linkedin_api_base_url=fake_linkedin.base_url,
                    linkedin_oauth_base_url=fake_linkedin.base_url)


def consent(client: FlaskClient, platform: str) -> dict[str, str]:
    """Press Connect, then the platform's Authorize: the query it sends the browser back with."""
    start = client.get(f"/connect/{platform}")
    assert start.status_code == 302
    return click_through(start.headers["Location"])


def come_back(client: FlaskClient, platform: str, params: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.get(f"/connect/{platform}/callback", query_string=params)


def stored(app: Flask) -> list[PlatformAccount]:
    with portal_db(app) as session:
        return list(session.scalars(select(PlatformAccount).order_by(PlatformAccount.id)))


def test_the_page_offers_connect_for_each_platform_the_registry_names(user_client):
    page = user_client.get("/accounts").get_data(as_text=True)
    assert 'href="/connect/twitter"' in page and 'href="/connect/linkedin"' in page
    # Bluesky and Mastodon have forms (the registry's connect_with), switched off on this server.
    assert page.count("Not connected.") == 4
    assert page.count("is not set up on this server yet") == 2


def test_connecting_x_and_linkedin_by_their_consent_pages(portal_app, user_client, user: TestUser, fake_x,
                                                         fake_linkedin):
    back = come_back(user_client, "twitter", consent(user_client, "twitter"))
    assert (back.status_code, back.headers["Location"]) == (302, "/accounts")
    back = come_back(user_client, "linkedin", consent(user_client, "linkedin"))
    assert back.status_code == 302

    page = user_client.get("/accounts").get_data(as_text=True)
    assert "@autopilot_test" in page and "Ada Lovelace" in page and page.count(">connected<") == 2
    assert "Access expires on" in page
    for token in (fake_x.access_token, fake_x.refresh_token, fake_linkedin.access_token):
        assert token not in page  # tokens are never rendered
    x, linkedin = stored(portal_app)
    vault = TokenVault([KEY])
    assert vault.credentials(x).access_token == fake_x.access_token
    assert vault.credentials(linkedin).access_token == fake_linkedin.access_token
    with portal_db(portal_app) as session:
        actors = set(session.scalars(select(AuditLog.actor).where(AuditLog.action == "account.connected")))
    assert actors == {f"user:{user.id}"}


def test_the_consent_answer_is_bound_to_the_browser_that_asked(portal_app, user_client, user, client):
    params = consent(user_client, "twitter")
    other_browser = signed_in(portal_app.test_client(), portal_app, user)

    refused = come_back(other_browser, "twitter", params)

    assert refused.status_code == 400
    assert "does not belong to a connection you started in this browser" in refused.get_data(as_text=True)
    assert stored(portal_app) == []


@pytest.mark.parametrize("tamper, words", [
    (lambda p: {**p, "state": "forged"}, "does not belong"),
    (lambda p: {"error": "access_denied", "state": p["state"]}, "You cancelled"),
    (lambda p: {"state": p["state"]}, "without an authorisation code"),
    (lambda p: {**p, "code": "made-up"}, "refused the authorisation code"),
])
def test_every_failed_answer_is_a_clear_page_and_stores_nothing(portal_app, user_client, tamper, words):
    params = consent(user_client, "twitter")

    page = come_back(user_client, "twitter", tamper(params))

    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert words in text and "Back to your accounts" in text
    assert stored(portal_app) == []


def test_a_reused_answer_is_refused_after_success(portal_app, user_client):
    params = consent(user_client, "twitter")
    assert come_back(user_client, "twitter", params).status_code == 302

    again = come_back(user_client, "twitter", params)

    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    assert len(stored(portal_app)) == 1


def test_needs_reauthorisation_shows_a_reconnect_button_that_clears_it(portal_app, user_client, fake_x):
    come_back(user_client, "twitter", consent(user_client, "twitter"))
    with portal_db(portal_app) as session:
        session.scalars(select(PlatformAccount)).one().status = AccountStatus.NEEDS_REAUTH
    page = user_client.get("/accounts").get_data(as_text=True)
    assert "needs re-authorisation" in page and "Reconnect X" in page

    come_back(user_client, "twitter", consent(user_client, "twitter"))

    [account] = stored(portal_app)
    assert account.status == AccountStatus.ACTIVE
    assert ">connected<" in user_client.get("/accounts").get_data(as_text=True)


def test_disconnect_needs_the_form_token_then_revokes_and_deletes(portal_app, user_client, fake_x):
    come_back(user_client, "twitter", consent(user_client, "twitter"))
    [account] = stored(portal_app)
    url = f"/accounts/{account.id}/disconnect"

    assert user_client.post(url).status_code == 400  # no CSRF token: refused, nothing done
    assert len(stored(portal_app)) == 1 and fake_x.revoked == []

    done = user_client.post(url, data={"csrf_token": csrf_token(user_client, "/accounts")}, follow_redirects=True)

    assert "is disconnected" in done.get_data(as_text=True)
    assert stored(portal_app) == [] and len(fake_x.revoked) == 2


def test_a_platform_the_server_is_not_set_up_for_says_so(tmp_path, user: TestUser):
    bare = Settings(database_url=f"sqlite:///{tmp_path / 'bare.db'}", secret_key=SECRET_KEY,
                    session_cookie_secure=False, portal_base_url=BASE_URL)
    app = create_app(bare, {"TESTING": True})
    Base.metadata.create_all(app.extensions[EXTENSION_KEY].engine)
    with portal_db(app) as session:
        create_user(session, user.email, {"timezone": "UTC"})
    client = signed_in(app.test_client(), app, user)

    assert "not set up on this server" in client.get("/accounts").get_data(as_text=True)
    page = client.get("/connect/twitter", follow_redirects=True).get_data(as_text=True)
    assert "X_CLIENT_ID" in page
    assert client.get("/connect/myspace").status_code == 404
    app.extensions[EXTENSION_KEY].engine.dispose()


def test_the_consent_url_names_the_registered_redirect_uri(user_client):
    location = user_client.get("/connect/twitter").headers["Location"]
    assert "redirect_uri=" + X_CALLBACK.replace(":", "%3A").replace("/", "%2F") in location
    assert urlsplit(location).path == "/i/oauth2/authorize"


def test_deleting_the_account_revokes_x_at_the_platform_and_audits_each_account(portal_app, user_client,
                                                                               user: TestUser, fake_x):
    come_back(user_client, "twitter", consent(user_client, "twitter"))
    come_back(user_client, "linkedin", consent(user_client, "linkedin"))
    assert len(stored(portal_app)) == 2 and fake_x.revoked == []

    done = user_client.post("/data/delete", data={"csrf_token": csrf_token(user_client, "/data/"),
                                                  "confirm": user.email})

    assert done.status_code == 302 and stored(portal_app) == []
    assert len(fake_x.revoked) == 2  # the access and the refresh token, through the connector
    with portal_db(portal_app) as session:
        deleted = session.scalars(select(AuditLog).where(AuditLog.action == "account.deleted")).one()
    assert deleted.details["accounts"] == {
        "twitter": {"revoked": True},
        "linkedin": {"revoked": None, "revocation": "not offered by LinkedIn"}}


def test_a_refused_revocation_deletes_the_account_all_the_same_and_audits_false(portal_app, user_client,
                                                                                user: TestUser, fake_x):
    come_back(user_client, "twitter", consent(user_client, "twitter"))
    fake_x.client_secret = "rotated-at-x"  # X now refuses the app's client authentication

    done = user_client.post("/data/delete", data={"csrf_token": csrf_token(user_client, "/data/"),
                                                  "confirm": user.email})

    assert done.status_code == 302 and stored(portal_app) == []
    with portal_db(portal_app) as session:
        deleted = session.scalars(select(AuditLog).where(AuditLog.action == "account.deleted")).one()
    assert deleted.details["accounts"] == {"twitter": {"revoked": False,
                                                       "revocation": "X answered 401 to the revocation"}}
