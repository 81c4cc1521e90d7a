"""The Procfile's ``web`` app: the portal at ``/``, the admin under ``/admin``, sessions apart."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from werkzeug.test import Client

from admin.ext import EXTENSION_KEY as ADMIN_KEY
from app.config import Settings
from app.models import Base
from app.operators import create_operator
from portal.web import create_web_app
from tests.portal.conftest import SECRET_KEY, TestUser, sign_in_link

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def web(portal_settings: Settings) -> Iterator[Client]:
    composed = create_web_app(portal_settings, portal_config={"TESTING": True}, admin_config={
        "TESTING": True, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": portal_settings.database_url,
        "SESSION_COOKIE_SECURE": False})
    admin_app = composed.mounts["/admin"]
    Base.metadata.create_all(admin_app.extensions[ADMIN_KEY].engine)
    with admin_app.extensions[ADMIN_KEY].session_factory() as session, session.begin():
        create_operator(session, "olga", "a long operator password")
    web = Client(composed)
    web.portal_app = composed.app  # type: ignore[attr-defined]
    yield web


def _token(client: Client, url: str) -> str:
    match = _CSRF.search(client.get(url, follow_redirects=True).get_data(as_text=True))
    assert match, url
    return match.group(1)


def test_the_admin_works_under_admin_with_its_cookie_scoped_there(web: Client) -> None:
    response = web.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/")
    login = web.get("/admin/login")
    assert login.status_code == 200 and 'href="/admin/static/autopilot.css"' in login.get_data(as_text=True)
    assert web.get("/admin/static/autopilot.css").status_code == 200
    response = web.post("/admin/login", data={"username": "olga", "password": "a long operator password",
                                              "csrf_token": _token(web, "/admin/login")})
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/")
    assert "Path=/admin" in response.headers["Set-Cookie"] and "autopilot_admin=" in response.headers["Set-Cookie"]
    dashboard = web.get(response.headers["Location"])
    assert dashboard.status_code == 200 and "olga" in dashboard.get_data(as_text=True)
    # Signed in to the admin is not signed in to the portal.
    assert web.get("/").headers["Location"].startswith("/signin")


def test_the_portal_works_at_the_root_and_its_session_is_not_the_admins(web: Client, make_user) -> None:  # type: ignore[no-untyped-def]
    ada: TestUser = make_user("ada@example.com")
    assert web.get("/healthz").status_code == 200
    token = sign_in_link(web.portal_app, ada.email)  # type: ignore[attr-defined]
    response = web.post(f"/signin/{token}", data={"csrf_token": _token(web, f"/signin/{token}")})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "autopilot_portal=" in cookie and "Path=/;" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert web.get("/").status_code == 200
    # A signed-in user is nobody to the admin.
    assert web.get("/admin/admin/").headers["Location"].startswith("/admin/login")
    # The portal's cookie value under the admin's name does not open the admin either.
    value = web.get_cookie("autopilot_portal").value  # type: ignore[union-attr]
    web.set_cookie("autopilot_admin", value, path="/admin")
    assert web.get("/admin/admin/").headers["Location"].startswith("/admin/login")


def test_the_procfile_web_line_serves_both_and_compose_runs_the_portal_alone() -> None:
    from bench.portal import web_command
    from tests.test_deploy_files import COMPOSE, compose_command

    assert web_command().startswith("gunicorn portal.web_wsgi:app ")
    assert compose_command("portal").startswith("gunicorn portal.wsgi:app ")
    service = COMPOSE.read_text().split("\n  portal:\n", 1)[1].split("\n\n", 1)[0]
    assert "/healthz" in service and "healthcheck:" in service
