"""Asking for a sign-in link: the same answer for every address, emailed, throttled; open sign-up."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.clock import utcnow
from app.config import Settings
from app.models import Base, SignInLink, User, UserSession
from app.signin import (
    LinkRefused,
    consume_link,
    create_link,
    disable_user,
    open_session,
    session_user,
)
from app.users import create_user
from portal import create_app
from portal.auth import mailer
from portal.ext import EXTENSION_KEY
from tests.fakes.smtp import SmtpState, running_smtp
from tests.portal.conftest import TestUser, csrf_token, portal_db, sign_in_link, signed_in

_CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]+"')


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpState, int]]:
    with running_smtp() as running:
        yield running


@pytest.fixture
def mail_app(portal_settings: Settings, smtp: tuple[SmtpState, int]) -> Iterator[Flask]:
    settings = replace(portal_settings, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_starttls=False,
                       smtp_sender="autopilot@example.com")
    app = create_app(settings, {"TESTING": True})
    Base.metadata.create_all(app.extensions[EXTENSION_KEY].engine)
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


def _ask(client: FlaskClient, email: str, address: str = "203.0.113.7") -> tuple[int, str]:
    token = csrf_token(client, "/signin")
    response = client.post("/signin", data={"email": email, "csrf_token": token},
                           environ_base={"REMOTE_ADDR": address}, follow_redirects=True)
    return response.status_code, response.get_data(as_text=True)


def _wait_for_mail(app: Flask) -> None:
    with app.app_context():
        mailer().submit(lambda: None).result(timeout=10)


def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(
        mail_app: Flask, smtp: tuple[SmtpState, int], make_user) -> None:  # type: ignore[no-untyped-def]
    with portal_db(mail_app) as session:
        create_user(session, "ada@example.com", {}, actor="test")
    client = mail_app.test_client()
    known = _ask(client, "ada@example.com")
    unknown = _ask(client, "nobody@example.com")
    assert known[0] == unknown[0] == 200
    assert "sign-in link is on its way" in known[1]
    assert _CSRF_VALUE.sub("", known[1]) == _CSRF_VALUE.sub("", unknown[1])  # byte for byte, token aside
    _wait_for_mail(mail_app)
    state, _ = smtp
    assert [m.recipients for m in state.mails] == [["ada@example.com"]]
    body = state.mails[0].message.get_payload(decode=True).decode()
    link = next(line for line in body.splitlines() if line.startswith("http://portal.test/signin/"))
    # The emailed link signs in.
    page = link.removeprefix("http://portal.test")
    response = client.post(page, data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 302 and client.get("/").status_code == 200
    with portal_db(mail_app) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1  # no sign-up: closed


def test_requests_are_throttled_per_email_and_per_address(client: FlaskClient, user: TestUser) -> None:
    for n in range(5):
        assert _ask(client, user.email, address=f"198.51.100.{n}")[0] == 200
    status, body = _ask(client, user.email, address="198.51.100.99")
    assert status == 429 and "Too many sign-in links" in body
    # Another address asking for many different emails is stopped too.
    for n in range(20):
        assert _ask(client, f"someone{n}@example.com", address="192.0.2.1")[0] == 200
    assert _ask(client, "someone-else@example.com", address="192.0.2.1")[0] == 429
    # ...and a third party, for another email, is not.
    assert _ask(client, "other@example.com", address="192.0.2.2")[0] == 200


def test_open_sign_up_makes_the_account_when_the_link_is_used(portal_settings: Settings) -> None:
    app = create_app(replace(portal_settings, portal_open_signup=True), {"TESTING": True})
    Base.metadata.create_all(app.extensions[EXTENSION_KEY].engine)
    client = app.test_client()
    assert "the link creates your account" in client.get("/signin").get_data(as_text=True)
    assert _ask(client, "new@example.com")[0] == 200
    with portal_db(app) as session:
        link = session.scalars(select(SignInLink)).one()
        assert link.user_id is None and session.scalar(select(func.count()).select_from(User)) == 0
    with portal_db(app) as session:  # the emailed link's twin (no SMTP here)
        token = create_link(session, app.extensions[EXTENSION_KEY].settings, "new@example.com", now=utcnow(),
                            created_by="portal", allow_new_user=True)
    response = client.post(f"/signin/{token}", data={"csrf_token": csrf_token(client, f"/signin/{token}")})
    assert response.status_code == 302
    with portal_db(app) as session:
        user = session.scalars(select(User)).one()
        assert user.email == "new@example.com" and not user.settings.enable_autonomous_mode
    app.extensions[EXTENSION_KEY].engine.dispose()


def test_a_link_expires_after_15_minutes(portal_app: Flask, user: TestUser) -> None:
    token = sign_in_link(portal_app, user.email)
    settings = portal_app.extensions[EXTENSION_KEY].settings
    with portal_db(portal_app) as session, pytest.raises(LinkRefused):
        consume_link(session, settings, token, now=utcnow() + timedelta(minutes=15, seconds=1))


def test_sessions_end_after_their_lifetime_and_when_the_user_is_disabled(
        portal_app: Flask, user: TestUser) -> None:
    now = utcnow()
    with portal_db(portal_app) as session:
        opened = open_session(session, session.get(User, user.id), now=now, lifetime=timedelta(hours=2))
    with portal_db(portal_app) as session:
        assert session_user(session, opened.token, now=now + timedelta(hours=1)) is not None
        assert session_user(session, opened.token, now=now + timedelta(hours=2)) is None
        disable_user(session, user.email, actor="operator:test")
    with portal_db(portal_app) as session:
        assert session.scalar(select(func.count()).select_from(UserSession)) == 0


def test_a_disabled_user_is_signed_out_at_once_and_cannot_sign_in(
        client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    signed_in(client, portal_app, user)
    token = sign_in_link(portal_app, user.email)
    with portal_db(portal_app) as session:
        disable_user(session, user.email, actor="operator:test")
    assert client.get("/").status_code == 302
    response = client.post(f"/signin/{token}", data={"csrf_token": csrf_token(client, f"/signin/{token}")})
    assert response.status_code == 400


def test_sign_out_everywhere_ends_every_browser(portal_app: Flask, user: TestUser) -> None:
    first = signed_in(portal_app.test_client(), portal_app, user)
    second = signed_in(portal_app.test_client(), portal_app, user)
    response = first.post("/signout/everywhere", data={"csrf_token": csrf_token(first, "/")})
    assert response.status_code == 302
    assert first.get("/").status_code == 302 and second.get("/").status_code == 302


def test_security_headers_and_cookie_flags(portal_settings: Settings, user: TestUser) -> None:
    app = create_app(replace(portal_settings, session_cookie_secure=True), {"TESTING": True})
    client = app.test_client()
    response = client.get("/signin", base_url="https://portal.test")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'nonce-" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    app.extensions[EXTENSION_KEY].engine.dispose()


def test_expired_sessions_and_links_are_deleted_on_the_next_sign_in(portal_app: Flask, user: TestUser) -> None:
    now = utcnow()
    with portal_db(portal_app) as session:
        ada = session.get(User, user.id)
        open_session(session, ada, now=now - timedelta(hours=3), lifetime=timedelta(hours=1))
        create_link(session, portal_app.extensions[EXTENSION_KEY].settings, user.email,
                    now=now - timedelta(hours=1), created_by="test")
    with portal_db(portal_app) as session:
        open_session(session, session.get(User, user.id), now=now, lifetime=timedelta(hours=1))
    with portal_db(portal_app) as session:
        assert session.scalar(select(func.count()).select_from(UserSession)) == 1
        assert session.scalar(select(func.count()).select_from(SignInLink)) == 0
