"""Connecting Bluesky (handle and app password) and Mastodon (the user's instance, then its
consent page) on the accounts page, in-process against the fakes over real sockets: connect,
reconnect, disconnect, and every bad input answered with a page that says why, nothing stored."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.clock import utcnow
from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.models import AccountStatus, AuditLog, ConnectFlow, OAuthClient, PlatformAccount
from app.platforms import PLATFORMS, get_platform
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.portal.conftest import BASE_URL, SECRET_KEY, csrf_token, portal_db, signed_in

KEY = generate_key()
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
#: The platforms with each kind of form, from the registry (never a key written here).
BY_PASSWORD = next(key for key, p in PLATFORMS.items() if p.connect_with == "app_password")
BY_INSTANCE = next(key for key, p in PLATFORMS.items() if p.connect_with == "instance")


@pytest.fixture
def fake_bluesky() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        fake.add_account("ada.example.com", APP_PASSWORD)
        fake.add_account("grace.example.com", "grace-pass-word-0000")
        yield fake


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        yield fake


@pytest.fixture
def portal_settings(tmp_path, fake_bluesky, fake_mastodon) -> Settings:  # type: ignore[no-untyped-def]
    switches = {name: True for key in (BY_PASSWORD, BY_INSTANCE) for name in get_platform(key).switch_settings}
    return Settings(database_url=f"sqlite:///{tmp_path / 'portal.db'}", secret_key=SECRET_KEY,
                    session_cookie_secure=False, portal_base_url=BASE_URL, token_encryption_keys=(KEY,),
                    bluesky_pds_url=fake_bluesky.base_url, **switches)


def stored(app: Flask) -> list[PlatformAccount]:
    with portal_db(app) as session:
        return list(session.scalars(select(PlatformAccount).order_by(PlatformAccount.id)))


def with_password(client: FlaskClient, handle: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(f"/connect/{BY_PASSWORD}/app-password", data={
        "csrf_token": csrf_token(client, "/accounts"), "handle": handle, "app_password": password})


def start_instance(client: FlaskClient, domain: str):  # type: ignore[no-untyped-def]
    return client.post(f"/connect/{BY_INSTANCE}/instance", data={
        "csrf_token": csrf_token(client, "/accounts"), "domain": domain})


def consent_link(response) -> str:  # type: ignore[no-untyped-def]
    """The "Continue to <server>" link of the page a started Mastodon connection shows."""
    assert response.status_code == 200, response.get_data(as_text=True)
    match = re.search(r'id="continue-consent" href="([^"]+)"', response.get_data(as_text=True))
    assert match
    return html.unescape(match.group(1))


def press(consent_url: str, decision: str = "authorize") -> dict[str, str]:
    """The instance's consent page: open it, press Authorize or Deny, return the query sent back."""
    page = httpx.get(consent_url)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    base = "{0.scheme}://{0.netloc}".format(urlsplit(consent_url))
    answer = httpx.post(f"{base}/oauth/authorize", data={**fields, "decision": decision})
    assert answer.status_code == 302, answer.text
    return dict(parse_qsl(urlsplit(answer.headers["location"]).query))


def test_the_page_offers_each_form_the_registry_names(user_client):
    page = user_client.get("/accounts").get_data(as_text=True)
    assert f'action="/connect/{BY_PASSWORD}/app-password"' in page
    assert f'action="/connect/{BY_INSTANCE}/instance"' in page
    assert page.count("Not connected.") == 4  # X and LinkedIn are not configured here
    assert page.count("is not set up on this server yet") == 2


def test_bluesky_connects_with_an_app_password_never_stored(portal_app, user_client, fake_bluesky):
    response = with_password(user_client, "@ada.example.com", APP_PASSWORD)
    assert response.status_code == 302
    page = user_client.get("/accounts").get_data(as_text=True)
    assert "@ada.example.com" in page and "is connected" in page
    assert APP_PASSWORD not in page
    [account] = stored(portal_app)
    assert (account.platform, account.external_id) == (BY_PASSWORD, fake_bluesky.by_handle("ada.example.com").did)
    assert account.service_url == fake_bluesky.base_url
    vault = TokenVault((KEY,))
    tokens = (vault.decrypt(account.access_token_encrypted), vault.decrypt(account.refresh_token_encrypted))
    assert APP_PASSWORD not in tokens and all(tokens)
    with portal_db(portal_app) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "account.connected")).all()
    assert [a.details["via"] for a in audit] == ["app_password"]
    assert all(APP_PASSWORD not in str(a.details) for a in audit)


@pytest.mark.parametrize(("handle", "password", "says"), [
    ("nobody.example.com", APP_PASSWORD, "did not accept this handle and app password"),
    ("ada.example.com", "wrong-pass-word-0000", "did not accept this handle and app password"),
    ("", APP_PASSWORD, "Type your handle"),
    ("ada.example.com", "  ", "Type an app password"),
])
def test_bluesky_bad_input_says_why_and_stores_nothing(portal_app, user_client, handle, password, says):
    response = with_password(user_client, handle, password)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert says in text and "nothing was connected" in text
    assert password.strip() == "" or password not in text
    assert stored(portal_app) == []


def test_bluesky_reconnect_replaces_tokens_and_clears_needs_reauth(portal_app, user_client):
    assert with_password(user_client, "ada.example.com", APP_PASSWORD).status_code == 302
    [before] = stored(portal_app)
    with portal_db(portal_app) as session:
        session.execute(update(PlatformAccount).values(status=AccountStatus.NEEDS_REAUTH))
    page = user_client.get("/accounts").get_data(as_text=True)
    assert "needs re-authorisation" in page and "Reconnect" in page
    assert with_password(user_client, "ada.example.com", APP_PASSWORD).status_code == 302
    [after] = stored(portal_app)
    assert after.id == before.id and after.status == AccountStatus.ACTIVE
    assert after.access_token_encrypted != before.access_token_encrypted
    assert "is reconnected" in user_client.get("/accounts").get_data(as_text=True)


def test_an_account_held_by_another_user_is_refused(portal_app, make_user, user_client, client, fake_bluesky):
    assert with_password(user_client, "ada.example.com", APP_PASSWORD).status_code == 302
    other = signed_in(portal_app.test_client(), portal_app, make_user("grace@example.com"))
    response = with_password(other, "ada.example.com", APP_PASSWORD)
    assert response.status_code == 400
    assert "already connected to another user" in response.get_data(as_text=True)
    assert len(stored(portal_app)) == 1


def test_bluesky_disconnect_deletes_the_session(portal_app, user_client, fake_bluesky):
    assert with_password(user_client, "ada.example.com", APP_PASSWORD).status_code == 302
    [account] = stored(portal_app)
    response = user_client.post(f"/accounts/{account.id}/disconnect",
                                data={"csrf_token": csrf_token(user_client, "/accounts")})
    assert response.status_code == 302
    assert stored(portal_app) == []
    assert fake_bluesky.deleted_sessions == 1
    assert "tokens are deleted" in user_client.get("/accounts").get_data(as_text=True)


def test_mastodon_connects_through_the_instance_consent_page(portal_app, user_client, fake_mastodon):
    domain = fake_mastodon.base_url  # http://127.0.0.1:port: the fake's origin
    consent = consent_link(start_instance(user_client, domain))
    assert consent.startswith(f"{fake_mastodon.base_url}/oauth/authorize?")
    query = dict(parse_qsl(urlsplit(consent).query))
    assert query["redirect_uri"] == f"{BASE_URL}/connect/{BY_INSTANCE}/callback"
    assert query["code_challenge_method"] == "S256"
    # The verifier stays on the server: encrypted on the flow row, never in the consent URL.
    with portal_db(portal_app) as session:
        flow = session.scalars(select(ConnectFlow)).one()
        assert flow.service_url == fake_mastodon.base_url
        assert TokenVault((KEY,)).decrypt(flow.code_verifier_encrypted) not in consent
    answer = press(consent)
    back = user_client.get(f"/connect/{BY_INSTANCE}/callback", query_string=answer)
    assert back.status_code == 302
    host = urlsplit(fake_mastodon.base_url).netloc
    assert f"@ada@{host}" in user_client.get("/accounts").get_data(as_text=True)
    [account] = stored(portal_app)
    assert (account.external_id, account.service_url) == (fake_mastodon.account_id, fake_mastodon.base_url)
    token = TokenVault((KEY,)).decrypt(account.access_token_encrypted)
    assert fake_mastodon.tokens[token] == fake_mastodon.account_id
    # The same answer again: the state is single use.
    again = user_client.get(f"/connect/{BY_INSTANCE}/callback", query_string=answer)
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    # Reconnect: a second registration is not needed, the token is replaced.
    second = start_instance(user_client, domain)
    user_client.get(f"/connect/{BY_INSTANCE}/callback", query_string=press(consent_link(second)))
    [after] = stored(portal_app)
    assert after.id == account.id and after.access_token_encrypted != account.access_token_encrypted
    with portal_db(portal_app) as session:
        assert len(session.scalars(select(OAuthClient)).all()) == 1
    # Disconnect revokes the token at the instance.
    current = TokenVault((KEY,)).decrypt(after.access_token_encrypted)
    user_client.post(f"/accounts/{after.id}/disconnect", data={"csrf_token": csrf_token(user_client, "/accounts")})
    assert stored(portal_app) == [] and current not in fake_mastodon.tokens and fake_mastodon.revoked_tokens == 1


def test_mastodon_denied_consent_stores_nothing(portal_app, user_client, fake_mastodon):
    consent = consent_link(start_instance(user_client, fake_mastodon.base_url))
    back = user_client.get(f"/connect/{BY_INSTANCE}/callback", query_string=press(consent, "deny"))
    assert back.status_code == 400 and "You cancelled" in back.get_data(as_text=True)
    assert stored(portal_app) == []


def test_mastodon_expired_state_stores_nothing(portal_app, user_client, fake_mastodon):
    consent = consent_link(start_instance(user_client, fake_mastodon.base_url))
    with portal_db(portal_app) as session:
        session.execute(update(ConnectFlow).values(expires_at=utcnow() - timedelta(seconds=1)))
    back = user_client.get(f"/connect/{BY_INSTANCE}/callback", query_string=press(consent))
    assert back.status_code == 400 and "minutes passed" in back.get_data(as_text=True)
    assert stored(portal_app) == []


@pytest.mark.parametrize(("domain", "says"), [
    ("", "Type your Mastodon server's domain"),
    ("not a domain/with/path", "is not an instance's domain"),
    ("http://127.0.0.1:9", "did not answer as a Mastodon server"),
])
def test_mastodon_bad_instance_says_why_and_stores_nothing(portal_app, user_client, domain, says):
    response = start_instance(user_client, domain)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert says in text.replace("&#39;", "'") and "nothing was connected" in text
    assert stored(portal_app) == []
    with portal_db(portal_app) as session:
        assert session.scalars(select(OAuthClient)).all() == []
        assert session.scalars(select(ConnectFlow)).all() == []


def test_a_server_that_is_not_mastodon_is_refused(portal_app, user_client, fake_bluesky):
    response = start_instance(user_client, fake_bluesky.base_url)  # answers, but not as an instance
    assert response.status_code == 400
    assert "did not answer as a Mastodon server" in response.get_data(as_text=True)
    assert stored(portal_app) == []


def test_the_same_account_id_on_two_instances_is_two_accounts(portal_app, make_user, user_client, fake_mastodon):
    with FakeMastodon() as other_instance:
        assert other_instance.account_id == fake_mastodon.account_id  # each instance numbers its own
        first = consent_link(start_instance(user_client, fake_mastodon.base_url))
        assert user_client.get(f"/connect/{BY_INSTANCE}/callback", query_string=press(first)).status_code == 302
        other = signed_in(portal_app.test_client(), portal_app, make_user("grace@example.com"))
        second = consent_link(start_instance(other, other_instance.base_url))
        assert other.get(f"/connect/{BY_INSTANCE}/callback", query_string=press(second)).status_code == 302
        # The same instance's account for a second user is refused, though.
        third = consent_link(start_instance(other, fake_mastodon.base_url))
        refused = other.get(f"/connect/{BY_INSTANCE}/callback", query_string=press(third))
        assert refused.status_code == 400 and "already connected to another user" in refused.get_data(as_text=True)
    assert sorted(a.service_url for a in stored(portal_app)) == sorted([fake_mastodon.base_url,
                                                                       other_instance.base_url])
