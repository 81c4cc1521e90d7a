"""Deleting one's account and disconnecting revoke the tokens at the platforms (X, Bluesky and
Mastodon: the fakes, over their sockets) while no session of the database sits ``idle in
transaction``: neither the request's session nor the user's row lock waits on a platform."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text

from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.models import AuditLog, PlatformAccount, User
from app.platforms import get_platform
from app.providers.base import TokenSet
from app.users import connect_account, create_user
from portal import create_app
from portal.ext import EXTENSION_KEY
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.platform import FakePlatform, Recorded, Response
from tests.fakes.x import FakeX
from tests.portal.conftest import (
    BASE_URL,
    OPTED_IN,
    SECRET_KEY,
    TestUser,
    csrf_token,
    portal_db,
    signed_in,
)
from tests.portal.test_accounts_open_networks import (
    APP_PASSWORD,
    BY_INSTANCE,
    BY_PASSWORD,
    consent_link,
    press,
    start_instance,
    with_password,
)

KEY = generate_key()


def open_transactions(engine: Engine) -> int:
    """How many other sessions of this database sit ``idle in transaction`` right now."""
    with engine.connect() as connection:
        return connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")) or 0


def watch_revocations(fake: FakePlatform, path: str, pg_engine: Engine) -> list[int]:
    """Note, at each request the fake receives on ``path``, how many transactions stand open."""
    route, seen = fake.route, []

    def watched(request: Recorded) -> Response:
        if request.path == path:
            seen.append(open_transactions(pg_engine))
        return route(request)

    fake.route = watched  # type: ignore[method-assign]
    return seen


@pytest.fixture
def fake_x(pg_engine: Engine) -> Iterator[FakeX]:
    """The X fake, noting at each revocation it receives how many transactions stand open."""
    with FakeX(client_id="x-client", client_secret="x-secret") as fake:
        fake.open_at_revoke = watch_revocations(fake, "/2/oauth2/revoke", pg_engine)  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def fake_bluesky(pg_engine: Engine) -> Iterator[FakeBluesky]:
    """A PDS with Ada's account, noting the open transactions at each deleteSession."""
    with FakeBluesky() as fake:
        fake.add_account("ada.example.com", APP_PASSWORD)
        fake.open_at_revoke = watch_revocations(  # type: ignore[attr-defined]
            fake, "/xrpc/com.atproto.server.deleteSession", pg_engine)
        yield fake


@pytest.fixture
def fake_mastodon(pg_engine: Engine) -> Iterator[FakeMastodon]:
    """An instance with Ada's account, noting the open transactions at each /oauth/revoke."""
    with FakeMastodon() as fake:
        fake.open_at_revoke = watch_revocations(fake, "/oauth/revoke", pg_engine)  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def pg_portal(pg_engine: Engine, fake_x: FakeX, fake_bluesky: FakeBluesky,
              fake_mastodon: FakeMastodon) -> Iterator[Flask]:
    """The portal on the run's (emptied) PostgreSQL, with X, Bluesky and Mastodon pointed at the fakes."""
    switches = {name: True for key in (BY_PASSWORD, BY_INSTANCE) for name in get_platform(key).switch_settings}
    settings = Settings(database_url=pg_engine.url.render_as_string(hide_password=False), secret_key=SECRET_KEY,
                        session_cookie_secure=False, portal_base_url=BASE_URL, token_encryption_keys=(KEY,),
                        x_client_id="x-client", x_client_secret="x-secret", x_api_base_url=fake_x.base_url,
                        x_authorize_url=fake_x.authorize_url, bluesky_pds_url=fake_bluesky.base_url, **switches)
    app = create_app(settings, {"TESTING": True})
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


@pytest.fixture
def ada(pg_portal: Flask, fake_x: FakeX) -> TestUser:
    """A user with X connected with the fake's current tokens."""
    with portal_db(pg_portal) as session:
        user = create_user(session, "ada@example.com", dict(OPTED_IN), actor="test")
        connect_account(session, TokenVault([KEY]), user.email, "twitter",
                        TokenSet(fake_x.access_token, fake_x.refresh_token, None), external_id=fake_x.user_id)
        return TestUser(id=user.id, email=user.email)


@pytest.fixture
def ada_client(pg_portal: Flask, ada: TestUser) -> FlaskClient:
    return signed_in(pg_portal.test_client(), pg_portal, ada)


def test_deleting_the_account_revokes_at_x_with_no_transaction_open(pg_portal, ada_client, ada, fake_x):
    tokens = (fake_x.access_token, fake_x.refresh_token)
    done = ada_client.post("/data/delete", data={"csrf_token": csrf_token(ada_client, "/data/"),
                                                 "confirm": ada.email})

    assert done.status_code == 302
    assert set(fake_x.revoked) == set(tokens)
    assert fake_x.open_at_revoke == [0] * len(fake_x.revoked)
    with portal_db(pg_portal) as session:
        assert session.scalar(select(User).where(User.id == ada.id)) is None
        deleted = session.scalars(select(AuditLog).where(AuditLog.action == "account.deleted")).one()
    assert deleted.details["accounts"] == {"twitter": {"revoked": True}}


def test_disconnecting_x_revokes_with_no_transaction_open(pg_portal, ada_client, ada, fake_x):
    with portal_db(pg_portal) as session:
        account_id = session.scalar(select(PlatformAccount.id).where(PlatformAccount.user_id == ada.id))
    tokens = (fake_x.access_token, fake_x.refresh_token)

    done = ada_client.post(f"/accounts/{account_id}/disconnect",
                           data={"csrf_token": csrf_token(ada_client, "/accounts")})

    assert done.status_code == 302
    assert set(fake_x.revoked) == set(tokens)
    assert fake_x.open_at_revoke == [0] * len(fake_x.revoked)
    with portal_db(pg_portal) as session:
        assert session.scalar(select(PlatformAccount.id).where(PlatformAccount.user_id == ada.id)) is None


def test_deleting_the_account_ends_the_bluesky_session_and_revokes_the_mastodon_token(
        pg_portal, ada_client, ada, fake_x, fake_bluesky, fake_mastodon):
    """The same revocations as Disconnect, with no transaction open: afterwards each fake
    refuses the tokens the autopilot held, and the audit row says each was revoked."""
    assert with_password(ada_client, "ada.example.com", APP_PASSWORD).status_code == 302
    answer = press(consent_link(start_instance(ada_client, fake_mastodon.base_url)))
    assert ada_client.get(f"/connect/{BY_INSTANCE}/callback", query_string=answer).status_code == 302
    vault = TokenVault([KEY])
    with portal_db(pg_portal) as session:
        held = {account.platform: vault.credentials(account) for account in session.scalars(
            select(PlatformAccount).where(PlatformAccount.user_id == ada.id))}
    bluesky, mastodon = held[BY_PASSWORD], held[BY_INSTANCE]
    assert bluesky.refresh_token
    assert httpx.get(f"{fake_bluesky.base_url}/xrpc/com.atproto.server.getSession",
                     headers={"Authorization": f"Bearer {bluesky.access_token}"}).status_code == 200
    assert httpx.get(f"{fake_mastodon.base_url}/api/v1/accounts/verify_credentials",
                     headers={"Authorization": f"Bearer {mastodon.access_token}"}).status_code == 200

    done = ada_client.post("/data/delete", data={"csrf_token": csrf_token(ada_client, "/data/"),
                                                 "confirm": ada.email})

    assert done.status_code == 302
    assert (fake_bluesky.deleted_sessions, fake_mastodon.revoked_tokens, len(fake_x.revoked)) == (1, 1, 2)
    assert fake_bluesky.open_at_revoke == [0] and fake_mastodon.open_at_revoke == [0]
    assert fake_x.open_at_revoke == [0, 0]
    # The tokens the autopilot held no longer work: the session is gone, the token revoked.
    assert httpx.get(f"{fake_bluesky.base_url}/xrpc/com.atproto.server.getSession",
                     headers={"Authorization": f"Bearer {bluesky.access_token}"}).status_code == 401
    assert httpx.post(f"{fake_bluesky.base_url}/xrpc/com.atproto.server.refreshSession",
                      headers={"Authorization": f"Bearer {bluesky.refresh_token}"}).status_code == 400
    assert httpx.get(f"{fake_mastodon.base_url}/api/v1/accounts/verify_credentials",
                     headers={"Authorization": f"Bearer {mastodon.access_token}"}).status_code == 401
    with portal_db(pg_portal) as session:
        assert session.scalar(select(User).where(User.id == ada.id)) is None
        deleted = session.scalars(select(AuditLog).where(AuditLog.action == "account.deleted")).one()
    assert deleted.details["accounts"] == {
        "twitter": {"revoked": True}, BY_PASSWORD: {"revoked": True}, BY_INSTANCE: {"revoked": True}}
