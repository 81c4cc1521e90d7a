"""Deleting one's account and disconnecting X revoke the tokens at X (the fake, over its socket)
while no session of the database sits ``idle in transaction``: neither the request's session
nor the user's row lock waits on the platform."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text

from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.models import AuditLog, PlatformAccount, User
from app.providers.base import TokenSet
from app.users import connect_account, create_user
from portal import create_app
from portal.ext import EXTENSION_KEY
from tests.fakes.platform import Recorded, Response
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

KEY = generate_key()


def open_transactions(engine: Engine) -> int:
    """How many other sessions of this database sit ``idle in transaction`` right now."""
    with engine.connect() as connection:
        return connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")) or 0


@pytest.fixture
def fake_x(pg_engine: Engine) -> Iterator[FakeX]:
    """The X fake, noting at each revocation it receives how many transactions stand open."""
    with FakeX(client_id="x-client", client_secret="x-secret") as fake:
        route = fake.route
        fake.open_at_revoke = []  # type: ignore[attr-defined]

        def watched(request: Recorded) -> Response:
            if request.path == "/2/oauth2/revoke":
                fake.open_at_revoke.append(open_transactions(pg_engine))  # type: ignore[attr-defined]
            return route(request)

        fake.route = watched  # type: ignore[method-assign]
        yield fake


@pytest.fixture
def pg_portal(pg_engine: Engine, fake_x: FakeX) -> Iterator[Flask]:
    """The portal on the run's (emptied) PostgreSQL, with X pointed at the fake."""
    settings = Settings(database_url=pg_engine.url.render_as_string(hide_password=False), secret_key=SECRET_KEY,
                        session_cookie_secure=False, portal_base_url=BASE_URL, token_encryption_keys=(KEY,),
                        x_client_id="x-client", x_client_secret="x-secret", x_api_base_url=fake_x.base_url,
                        x_authorize_url=fake_x.authorize_url)
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
