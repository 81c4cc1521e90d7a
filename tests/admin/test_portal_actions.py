"""The user page's portal actions: a one-time sign-in link (as ``autopilot users invite``), disable."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.clock import utcnow
from app.config import Settings
from app.models import AuditLog, User, UserSession
from app.signin import consume_link, open_session
from tests.admin.conftest import csrf_token, db
from tests.admin.test_admin import add_user

_LINK = re.compile(r'<code class="invite-link">([^<]+)</code>')


def test_invite_shows_a_one_time_link_the_portal_accepts(operator: FlaskClient, app: Flask) -> None:
    user_id = add_user(app)
    details = f"/admin/users/details/?id={user_id}"
    response = operator.post(f"/admin/users/invite/?id={user_id}", data={"csrf_token": csrf_token(operator, details)})
    assert response.status_code == 200
    match = _LINK.search(response.get_data(as_text=True))
    assert match, "no link on the page"
    token = html.unescape(match.group(1)).rsplit("/signin/", 1)[1]
    with db(app) as session:
        user = consume_link(session, Settings(secret_key=app.config["SECRET_KEY"]), token, now=utcnow())
        assert user.id == user_id
        actors = session.scalars(select(AuditLog.actor).where(AuditLog.action == "user.sign_in_link_created")).all()
        assert actors == ["operator:alice"]


def test_disable_ends_the_users_portal_sessions(operator: FlaskClient, app: Flask) -> None:
    user_id = add_user(app)
    with db(app) as session:
        open_session(session, session.get(User, user_id), now=utcnow(), lifetime=timedelta(hours=1))
    details = f"/admin/users/details/?id={user_id}"
    response = operator.post(f"/admin/users/disable/?id={user_id}", data={"csrf_token": csrf_token(operator, details)})
    assert response.status_code == 302
    with db(app) as session:
        assert session.get(User, user_id).disabled
        assert session.scalar(select(func.count()).select_from(UserSession)) == 0
    page = operator.get(details).get_data(as_text=True)
    assert "Enable (let them sign in again)" in page


def test_the_portal_actions_refuse_a_post_without_csrf(operator: FlaskClient, app: Flask) -> None:
    user_id = add_user(app)
    operator.post(f"/admin/users/disable/?id={user_id}")
    with db(app) as session:
        assert not session.get(User, user_id).disabled
