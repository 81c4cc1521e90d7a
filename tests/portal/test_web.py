"""The Procfile's ``web`` app: the portal at ``/``, the admin under ``/admin``, sessions apart."""

from __future__ import annotations

import dataclasses
import os
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
METRICS_TOKEN = "composed-metrics-token-0123456789"


@pytest.fixture
def web(portal_settings: Settings) -> Iterator[Client]:
    admin_settings = dataclasses.replace(portal_settings, metrics_bearer_token=METRICS_TOKEN,
                                         redis_url=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:1/0"))
    composed = create_web_app(portal_settings, portal_config={"TESTING": True}, admin_config={
        "TESTING": True, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": portal_settings.database_url,
        "SESSION_COOKIE_SECURE": False, "AUTOPILOT_SETTINGS": admin_settings})
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
    assert response.headers["Location"] == "/admin/"
    dashboard = web.get(response.headers["Location"])
    assert dashboard.status_code == 200 and "olga" in dashboard.get_data(as_text=True)
    # The views sit at the root of the mounted admin (no /admin/admin/...), their links too.
    page = dashboard.get_data(as_text=True)
    assert 'href="/admin/users/"' in page and '"/admin/admin/' not in page
    users = web.get("/admin/users/")
    assert users.status_code == 200 and '"/admin/admin/' not in users.get_data(as_text=True)
    # Flask-Admin's own files, beside the app's stylesheet.
    assert "/admin/static/admin/admin/css/bootstrap4/admin.css" in page
    assert web.get("/admin/static/admin/admin/css/bootstrap4/admin.css").status_code == 200
    assert web.get("/admin/admin/users/").status_code == 404
    # Signed in to the admin is not signed in to the portal.
    assert web.get("/").headers["Location"].startswith("/signin")


def test_a_view_asked_for_before_login_is_where_login_returns(web: Client) -> None:
    response = web.get("/admin/posts/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")
    after = web.post(response.headers["Location"], data={
        "username": "olga", "password": "a long operator password", "csrf_token": _token(web, "/admin/login")})
    assert after.status_code == 302 and after.headers["Location"] == "/admin/posts/"
    assert web.get(after.headers["Location"]).status_code == 200


def test_health_and_metrics_are_under_admin_with_the_bearer_token(web: Client) -> None:
    assert web.get("/admin/healthz").get_json() == {"status": "ok"}
    refused = web.get("/admin/metrics")
    assert refused.status_code == 401
    scrape = web.get("/admin/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scrape.status_code == 200 and "autopilot_posts" in scrape.get_data(as_text=True)


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
    assert web.get("/admin/").headers["Location"].startswith("/admin/login")
    # The portal's cookie value under the admin's name does not open the admin either.
    value = web.get_cookie("autopilot_portal").value  # type: ignore[union-attr]
    web.set_cookie("autopilot_admin", value, path="/admin")
    assert web.get("/admin/").headers["Location"].startswith("/admin/login")


def test_the_procfile_web_line_serves_both_and_compose_runs_the_portal_alone() -> None:
    from bench.portal import web_command
    from tests.test_deploy_files import COMPOSE, compose_command

    assert web_command().startswith("gunicorn portal.web_wsgi:app ")
    assert compose_command("portal").startswith("gunicorn portal.wsgi:app ")
    service = COMPOSE.read_text().split("\n  portal:\n", 1)[1].split("\n\n", 1)[0]
    assert "/healthz" in service and "healthcheck:" in service
