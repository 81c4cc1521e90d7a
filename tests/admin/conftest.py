"""Flaskr-style fixtures for the admin: an app on a throwaway SQLite file, a client, a runner.

CSRF stays on in every test: posts carry the token a real browser would have, read from a
rendered form, so the tests exercise the same checks production does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from admin import create_app
from admin.ext import EXTENSION_KEY
from app.models import Base
from app.operators import create_operator

OPERATOR = "alice"
PASSWORD = "correct horse battery"

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def app(tmp_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "SESSION_COOKIE_SECURE": False,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'admin.db'}",
        }
    )
    Base.metadata.create_all(app.extensions[EXTENSION_KEY].engine)
    with db(app) as session:
        create_operator(session, OPERATOR, PASSWORD)
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@contextmanager
def db(app: Flask) -> Iterator[Session]:
    """A session on the app's database, committed on exit (setting up or checking rows)."""
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        yield session


def csrf_token(client: FlaskClient, url: str = "/login") -> str:
    """The CSRF token of the client's session, as a form on ``url`` renders it."""
    match = _CSRF.search(client.get(url).get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return match.group(1)


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, username: str = OPERATOR, password: str = PASSWORD, **kwargs):  # type: ignore[no-untyped-def]
        token = csrf_token(self._client)
        return self._client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}, **kwargs
        )

    def logout(self):  # type: ignore[no-untyped-def]
        return self._client.post("/logout", data={"csrf_token": csrf_token(self._client)})


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def operator(client: FlaskClient, auth: AuthActions) -> FlaskClient:
    """A client logged in as the operator."""
    response = auth.login()
    assert response.status_code == 302
    return client


# Real-browser fixtures (live admin on PostgreSQL, a page logged in); the one session-wide
# chromium (``browser``) and the screenshots directory are in tests/conftest.py.
from tests.browser import admin_server, browser_context, logged_in_page  # noqa: E402, F401
