"""Flaskr-style fixtures for the users' portal: an app on a throwaway SQLite file, a client, and
a way to sign a client in as a user through the real sign-in link.

CSRF stays on: every POST carries the token a real browser would have, read from a rendered
form (``csrf_token``). Other areas' tests (accounts, dashboard, media) use these names::

    def test_something(portal_app, client, make_user):
        ada = make_user("ada@example.com")
        signed_in(client, portal_app, ada)
        client.get("/posts")
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from app.clock import utcnow
from app.config import Settings
from app.db import make_session_factory
from app.models import Base
from app.operators import create_operator
from app.signin import create_link
from app.users import create_user
from portal import create_app
from portal.ext import EXTENSION_KEY
from portal.web import create_web_app
from tests.browser import BROWSER_OPERATOR, BROWSER_PASSWORD, horizontal_overflow, shoot
from tests.fakes.smtp import SmtpState, running_smtp

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

#: Settings every in-process portal test starts from (a database URL is added per test).
SECRET_KEY = "portal-test-secret"
BASE_URL = "http://portal.test"


@dataclass(frozen=True)
class TestUser:
    """A user made by ``make_user`` (plain values: usable after its session closed)."""

    __test__ = False  # not a test class, whatever its name says

    id: int
    email: str


@pytest.fixture
def portal_settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(database_url=f"sqlite:///{tmp_path / 'portal.db'}", secret_key=SECRET_KEY,
                    session_cookie_secure=False, portal_base_url=BASE_URL, media_dir=str(tmp_path / "media"))


@pytest.fixture
def portal_app(portal_settings: Settings) -> Iterator[Flask]:
    app = create_app(portal_settings, {"TESTING": True})
    Base.metadata.create_all(app.extensions[EXTENSION_KEY].engine)
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


@pytest.fixture
def client(portal_app: Flask) -> FlaskClient:
    return portal_app.test_client()


@contextmanager
def portal_db(app: Flask) -> Iterator[Session]:
    """A session on the app's database, committed on exit (setting up or checking rows)."""
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        yield session


#: Settings of a user who opted in, with one platform and one topic (valid as a whole).
OPTED_IN: dict[str, Any] = {
    "enable_autonomous_mode": True, "timezone": "Europe/Paris", "preferred_platforms": ["twitter"],
    "posting_times": {"twitter": ["09:00"]}, "topics": ["python"],
}


@pytest.fixture
def make_user(portal_app: Flask) -> Callable[..., TestUser]:
    """``make_user(email, **settings)``: a user with validated settings (default: opted in)."""

    def make(email: str = "ada@example.com", **settings: Any) -> TestUser:
        with portal_db(portal_app) as session:
            user = create_user(session, email, {**OPTED_IN, **settings}, actor="test")
            return TestUser(id=user.id, email=user.email)

    return make


def csrf_token(client: FlaskClient, url: str = "/signin") -> str:
    """The CSRF token of the client's session, as a form on ``url`` renders it."""
    match = _CSRF.search(client.get(url, follow_redirects=True).get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def sign_in_link(app: Flask, email: str) -> str:
    """A fresh one-time link's signed token for ``email`` (as ``autopilot users invite`` makes)."""
    with portal_db(app) as session:
        token = create_link(session, app.extensions[EXTENSION_KEY].settings, email, now=utcnow(), created_by="test")
    assert token is not None, f"no active user {email}"
    return token


def signed_in(client: FlaskClient, app: Flask, user: TestUser) -> FlaskClient:
    """Sign ``client`` in as ``user`` through the real link page; returns the client."""
    token = sign_in_link(app, user.email)
    page = f"/signin/{token}"
    response = client.post(page, data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def user(make_user: Callable[..., TestUser]) -> TestUser:
    return make_user("ada@example.com")


@pytest.fixture
def user_client(client: FlaskClient, portal_app: Flask, user: TestUser) -> FlaskClient:
    """A client signed in as ``user``."""
    return signed_in(client, portal_app, user)


# -- the real-browser fixtures: the Procfile's web app over real HTTP on PostgreSQL ----------------


@dataclass
class LivePortal:
    """The web app (portal at ``/``, admin under ``/admin``) served on 127.0.0.1, and its parts."""

    url: str
    sessions: sessionmaker[Session]
    settings: Settings
    mails: SmtpState


@pytest.fixture
def portal_server_settings() -> dict[str, Any]:
    """More settings for ``portal_server`` (a test module overrides this: platform fakes...)."""
    return {}


@pytest.fixture
def portal_server(pg_engine: Engine, portal_server_settings: dict[str, Any],
                  tmp_path) -> Iterator[LivePortal]:  # type: ignore[no-untyped-def]
    """The Procfile's web app over real HTTP on the run's (emptied) PostgreSQL, mail to a fake SMTP,
    with the operator :data:`tests.browser.BROWSER_OPERATOR`."""
    url = pg_engine.url.render_as_string(hide_password=False)
    with running_smtp() as (mails, smtp_port):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        settings = Settings(database_url=url, secret_key=SECRET_KEY, session_cookie_secure=False,
                            portal_base_url=f"http://127.0.0.1:{port}", smtp_host="127.0.0.1", smtp_port=smtp_port,
                            smtp_starttls=False, smtp_sender="autopilot@example.com", media_dir=str(tmp_path / "media"),
                            **portal_server_settings)
        web = create_web_app(settings, admin_config={"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url,
                                                     "SESSION_COOKIE_SECURE": False})
        sessions = make_session_factory(pg_engine)
        with sessions() as session, session.begin():
            create_operator(session, BROWSER_OPERATOR, BROWSER_PASSWORD, actor="test")
        server = make_server("127.0.0.1", port, web, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield LivePortal(url=f"http://127.0.0.1:{port}", sessions=sessions, settings=settings, mails=mails)
        finally:
            server.shutdown()
            thread.join(timeout=10)
            web.app.extensions[EXTENSION_KEY].engine.dispose()
            web.mounts["/admin"].extensions["autopilot"].engine.dispose()


#: The two widths every portal page is looked at in.
PHONE = {"width": 375, "height": 740}
LAPTOP = {"width": 1366, "height": 768}


def both_widths(page: Any, screenshots: Path, name: str) -> None:
    """Screenshot the page at 1366 and at 375 px as ``portal-<name>-<width>``; neither may
    scroll sideways."""
    for label, size in (("1366", LAPTOP), ("375", PHONE)):
        page.set_viewport_size(size)
        assert horizontal_overflow(page) == 0, f"{name} scrolls sideways at {label} px"
        shoot(page, screenshots, f"portal-{name}-{label}")
    page.set_viewport_size(LAPTOP)


def follow_sign_in_link(page: Any, base_url: str, token: str) -> None:
    """Open a one-time sign-in link and press its button, as a user does; ends on the dashboard."""
    page.goto(f"{base_url}/signin/{token}")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


# The session-wide chromium (``browser``) and ``screenshots`` are in tests/conftest.py.
from tests.browser import browser_context  # noqa: E402, F401
