"""Signing in by one-time link, and the server-side sessions behind the cookie."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.models import AuditLog, UserSession
from tests.portal.conftest import TestUser, csrf_token, portal_db, sign_in_link, signed_in


def test_a_signed_out_visitor_is_sent_to_the_sign_in_page(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin")


def test_a_link_signs_in_once(client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    token = sign_in_link(portal_app, user.email)
    page = f"/signin/{token}"
    assert client.get(page).status_code == 200  # opening the link uses nothing
    response = client.post(page, data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200 and user.email in home.get_data(as_text=True)

    other = portal_app.test_client()
    again = other.post(page, data={"csrf_token": csrf_token(other, page)})
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert other.get("/").status_code == 302
    with portal_db(portal_app) as session:
        actions = session.scalars(select(AuditLog.action).where(AuditLog.user_id == user.id)).all()
        assert "user.signed_in" in actions and "user.sign_in_link_created" in actions


def test_an_altered_link_is_refused(client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    token = sign_in_link(portal_app, user.email)
    page = f"/signin/{token[:-2]}xx"
    response = client.post(page, data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)


def test_sign_out_ends_the_session_server_side(client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    signed_in(client, portal_app, user)
    cookie = client.get_cookie("autopilot_portal")
    assert cookie is not None and cookie.http_only
    client.post("/signout", data={"csrf_token": csrf_token(client, "/")})
    with portal_db(portal_app) as session:
        assert session.scalar(select(func.count()).select_from(UserSession)) == 0
    # A copy of the old cookie is worth nothing now.
    thief = portal_app.test_client()
    thief.set_cookie("autopilot_portal", cookie.value)
    assert thief.get("/").status_code == 302
