"""Login and session hardening: throttling, revocation, lifetime, cookies, headers, CSV exports."""

from __future__ import annotations

import csv
import io
import logging
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from admin import create_app
from admin.auth import LOGIN_AT_KEY
from app.clock import utcnow
from app.models import LoginThrottle, PlatformAccount
from app.operators import create_operator, set_password
from app.throttle import (
    DEFAULT_ACCOUNT_FAILURES,
    DEFAULT_ADDRESS_FAILURES,
    ThrottleLimits,
    account_key,
    locked_until,
    register_failure,
)
from tests.admin.conftest import OPERATOR, PASSWORD, AuthActions, db
from tests.admin.test_admin import add_user, text_of


def test_100_wrong_passwords_in_a_row_are_throttled_and_each_failure_is_logged(
    app: Flask, client: FlaskClient, auth: AuthActions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="admin")
    statuses = [auth.login(OPERATOR, f"wrong password {i}").status_code for i in range(100)]
    # The first failures are answered normally, the one reaching the limit locks the account,
    # and every later attempt is refused without the password even being checked.
    assert statuses[: DEFAULT_ACCOUNT_FAILURES - 1] == [200] * (DEFAULT_ACCOUNT_FAILURES - 1)
    assert statuses[DEFAULT_ACCOUNT_FAILURES - 1:] == [429] * (100 - DEFAULT_ACCOUNT_FAILURES + 1)
    failures = [r for r in caplog.records if r.getMessage().startswith("failed login")]
    refusals = [r for r in caplog.records if r.getMessage().startswith("login refused while locked")]
    assert (len(failures), len(refusals)) == (DEFAULT_ACCOUNT_FAILURES, 100 - DEFAULT_ACCOUNT_FAILURES)
    assert all("wrong password" not in r.getMessage() for r in caplog.records)  # never the password

    # Locked out: even the right password is refused for now...
    response = auth.login()
    assert response.status_code == 429 and "Too many failed logins" in text_of(response)
    assert client.get("/admin/").status_code == 302
    # ...and accepted once the lockout is over.
    with db(app) as session:
        session.execute(update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert auth.login().status_code == 302
    assert client.get("/admin/").status_code == 200


def test_one_address_guessing_many_accounts_is_locked_out(app: Flask, auth: AuthActions) -> None:
    for i in range(DEFAULT_ADDRESS_FAILURES):
        auth.login(f"nobody-{i}", "whatever it is")
    response = auth.login()  # the right operator and password, from the same address
    assert response.status_code == 429


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"], indirect=True)
def test_throttle_counts_over_a_window_and_locks(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = sessionmaker(engine)
    limits = ThrottleLimits(account_failures=3, window=timedelta(minutes=10), lockout=timedelta(minutes=5))
    now = utcnow()
    key = account_key("Alice ")
    with sessions() as s, s.begin():
        assert [register_failure(s, key, 3, limits, now + timedelta(seconds=i)) for i in range(3)] == [False, False, True]
        assert locked_until(s, [key], now + timedelta(minutes=4)) == now + timedelta(seconds=2) + limits.lockout
        assert locked_until(s, [key], now + timedelta(minutes=6)) is None
        # After the window, counting starts again.
        later = now + timedelta(minutes=30)
        assert register_failure(s, key, 3, limits, later) is False
        assert s.scalar(select(LoginThrottle.failures).where(LoginThrottle.key == key)) == 1


def test_a_copied_cookie_is_refused_after_logout(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login()
    cookie = client.get_cookie("autopilot_admin")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("autopilot_admin", cookie.value)
    assert thief.get("/admin/").status_code == 200  # a copy works while the session lives
    auth.logout()
    assert thief.get("/admin/").status_code == 302  # and not after logout
    assert client.get("/admin/").status_code == 302


def test_a_password_change_ends_open_sessions(app: Flask, operator: FlaskClient) -> None:
    with db(app) as session:
        set_password(session, OPERATOR, "another long password", actor="test")
    assert operator.get("/admin/").status_code == 302


def test_a_session_older_than_its_lifetime_is_refused(app: Flask, operator: FlaskClient) -> None:
    lifetime = app.permanent_session_lifetime
    with operator.session_transaction() as session:
        session[LOGIN_AT_KEY] = int((utcnow() - lifetime - timedelta(seconds=5)).timestamp())
    assert operator.get("/admin/").status_code == 302


def test_a_disabled_operator_cannot_log_in(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    from app.operators import disable_operator

    with db(app) as session:
        disable_operator(session, OPERATOR, actor="test")
    assert "Wrong username or password." in text_of(auth.login())


@pytest.mark.parametrize("url", ["/login", "/admin/", "/admin/users/"])
def test_security_headers_on_every_page(operator: FlaskClient, url: str) -> None:
    headers = operator.get(url).headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp and "unsafe-inline'" not in \
        csp.split("script-src")[1].split(";")[0]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers  # plain http in this test app


def test_secure_cookies_and_hsts_by_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app({"SECRET_KEY": "k", "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.permanent_session_lifetime == timedelta(hours=8)
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]


def test_session_cookie_secure_can_be_turned_off(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.config import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "false")
    monkeypatch.setenv("ADMIN_SESSION_HOURS", "2")
    get_settings.cache_clear()
    try:
        app = create_app()
    finally:
        get_settings.cache_clear()
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.permanent_session_lifetime == timedelta(hours=2)


def test_csv_export_neutralises_formula_cells(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    with db(app) as session:
        session.add(PlatformAccount(user_id=user_id, platform="twitter", handle='=HYPERLINK("http://x","y")',
                                    access_token_encrypted="c"))
        session.add(PlatformAccount(user_id=user_id, platform="linkedin", handle="@ada", access_token_encrypted="c"))
    body = operator.get("/admin/accounts/export/csv/").get_data(as_text=True)
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in cells
    assert "'@ada" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_operator_creation_is_audited(app: Flask) -> None:
    from app.models import AuditLog

    with db(app) as session:
        create_operator(session, "bob", "a long enough secret", actor="cli")
    with db(app) as session:
        row = session.scalars(select(AuditLog).where(AuditLog.action == "operator.created",
                                                     AuditLog.details["operator"].as_string() == "bob")).one()
        assert row.actor == "cli" and PASSWORD not in str(row.details)
