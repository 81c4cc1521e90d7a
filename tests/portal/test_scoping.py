"""Every portal route, found by walking ``app.url_map``: a new route cannot skip these checks.

1. A route not in :data:`PUBLIC_ENDPOINTS` sends a signed-out visitor to the sign-in page,
   for every method it accepts.
2. A route with an id in its path, tried by a signed-in user with *another* user's id, answers
   404 for every method and changes nothing of the other user's (every table with a
   ``user_id``, and their users row).
3. Every route, tried with another user's ids in the query string and the form, changes
   nothing of theirs and shows none of it.

A route whose path takes an id needs a way to make another user's row for it: add the
argument's name to :data:`OTHER_USERS_ROWS`. A string argument needs a sample value in
:data:`SAMPLE_VALUES`. The test fails, naming the route, until both are there.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter, Rule

from app.clock import utcnow
from app.models import (
    Base,
    MediaItem,
    Notification,
    PlatformAccount,
    Post,
    PostStatus,
    ReviewReason,
    User,
    UserSession,
)
from tests.portal.conftest import TestUser, csrf_token, portal_db, signed_in

#: Routes anyone may open signed out, on purpose. Adding one here is a decision: say why.
PUBLIC_ENDPOINTS = {
    "static",  # the stylesheet
    "charts.static",  # the charting library and its drawing script
    "home.healthz",  # the load balancer's probe: says "ok", nothing else
    "auth.signin",  # asking for a link
    "auth.signin_link",  # using one
    "auth.signout",  # harmless signed out: clears the cookie
}

#: The other user's address: it may appear on no page of ours.
OTHER_EMAIL = "zed@example.com"


def secret_of(user_id: int) -> str:
    """What a user's rows say (post text, notification): another user's pages never show it."""
    return f"private-text-of-user-{user_id}"


def _post(session: Session, user_id: int) -> int:
    post = Post(user_id=user_id, platform="twitter", text=secret_of(user_id), status=PostStatus.NEEDS_REVIEW,
                review_reason=ReviewReason.APPROVAL, scheduled_at=utcnow() + timedelta(days=1))
    session.add(post)
    session.flush()
    return post.id


def _account(session: Session, user_id: int) -> int:
    account = PlatformAccount(user_id=user_id, platform="twitter", handle="zed",
                              access_token_encrypted="not-a-real-token")
    session.add(account)
    session.flush()
    return account.id


def _notification(session: Session, user_id: int) -> int:
    row = Notification(user_id=user_id, kind="test", subject=secret_of(user_id), body=secret_of(user_id))
    session.add(row)
    session.flush()
    return row.id


def _session(session: Session, user_id: int) -> int:
    row = UserSession(user_id=user_id, token_hash=f"{user_id:064d}", expires_at=utcnow() + timedelta(days=1))
    session.add(row)
    session.flush()
    return row.id


def _media(session: Session, user_id: int) -> int:
    row = MediaItem(user_id=user_id, storage_key=f"u{user_id}/other.png", thumbnail_key=f"u{user_id}/other.thumb.png",
                    alt_text=secret_of(user_id), tags=[], content_type="image/png", width_px=1, height_px=1,
                    size_bytes=1)
    session.add(row)
    session.flush()
    return row.id


#: Path argument -> how to make another user's row and get its id.
OTHER_USERS_ROWS: dict[str, Callable[[Session, int], int]] = {
    "post_id": _post,
    "account_id": _account,
    "notification_id": _notification,
    "session_id": _session,
    "media_id": _media,
    "user_id": lambda session, user_id: user_id,
}

#: String path arguments -> a value that reaches the view.
SAMPLE_VALUES: dict[str, str] = {
    "filename": "portal.css",
    "token": "not-a-link",
    "platform": "twitter",
    "name": "other.png",
    "day": "2026-11-22",
}

#: Query and form fields carrying ids, sent to every route with the other user's ids.
ID_FIELDS = ("id", "post_id", "account_id", "notification_id", "user_id", "session_id", "media_id")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _rules(app: Flask) -> list[Rule]:
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
    assert len(rules) >= 10, "the URL map looks empty: is the portal's app the one walked?"
    return rules


def _is_id(rule: Rule, name: str) -> bool:
    return isinstance(rule._converters[name], IntegerConverter) or name == "id" or name.endswith("_id")


def _snapshot(session: Session, user_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that belongs to the user, and their users row."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for table in Base.metadata.sorted_tables:
        column = table.c.get("user_id")
        if column is None:
            continue
        state[table.name] = sorted((tuple(row) for row in session.execute(select(table).where(column == user_id))),
                                   key=repr)
    state["users"] = [tuple(r) for r in session.execute(select(User.__table__).where(User.id == user_id))]
    return state


@pytest.fixture
def other(portal_app: Flask, make_user: Callable[..., TestUser]) -> tuple[TestUser, dict[str, int]]:
    """Another user with one row of every kind a route can name; their ids by argument name."""
    zed = make_user(OTHER_EMAIL, require_approval=True)
    with portal_db(portal_app) as session:
        ids = {name: make(session, zed.id) for name, make in OTHER_USERS_ROWS.items()}
    return zed, ids


def _url(rule: Rule, ids: dict[str, int]) -> str:
    values: dict[str, Any] = {}
    for name in rule.arguments:
        if _is_id(rule, name):
            if name not in ids:
                pytest.fail(f"{rule.rule} ({rule.endpoint}) takes {name!r}: add a maker for it to "
                            "OTHER_USERS_ROWS in tests/portal/test_scoping.py")
            values[name] = ids[name]
        else:
            if name not in SAMPLE_VALUES:
                pytest.fail(f"{rule.rule} ({rule.endpoint}) takes {name!r}: add a sample value to SAMPLE_VALUES")
            values[name] = SAMPLE_VALUES[name]
    return rule.build(values, append_unknown=False)[1]


def _methods(rule: Rule) -> list[str]:
    return [m for m in METHODS if m in (rule.methods or ())]


def _call(client: FlaskClient, method: str, url: str, data: dict[str, Any]) -> Any:
    token = csrf_token(client, "/signin") if method != "GET" else None
    if token is not None:
        data = {**data, "csrf_token": token}
    return client.open(url, method=method, data=data if method != "GET" else None)


def test_every_route_but_the_public_ones_needs_sign_in(
        portal_app: Flask, other: tuple[TestUser, dict[str, int]]) -> None:
    _, ids = other
    checked = 0
    for rule in _rules(portal_app):
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = _url(rule, ids)
        for method in _methods(rule):
            client = portal_app.test_client()
            response = _call(client, method, url, {})
            assert response.status_code == 302, f"{method} {url} answered {response.status_code} signed out"
            assert response.headers["Location"].startswith("/signin"), f"{method} {url} -> {response.headers['Location']}"
            checked += 1
    assert checked >= 8


def test_another_users_id_in_any_route_is_404_and_changes_nothing(
        portal_app: Flask, user: TestUser, other: tuple[TestUser, dict[str, int]]) -> None:
    zed, ids = other
    with portal_db(portal_app) as session:
        before = _snapshot(session, zed.id)
    checked = 0
    for rule in _rules(portal_app):
        if not any(_is_id(rule, name) for name in rule.arguments):
            continue
        url = _url(rule, ids)
        for method in _methods(rule):
            client = signed_in(portal_app.test_client(), portal_app, user)
            response = _call(client, method, url, {"text": "hijacked", "choice": "cancel"})
            assert response.status_code == 404, f"{method} {url} answered {response.status_code} for another user's id"
            body = response.get_data(as_text=True)
            assert secret_of(zed.id) not in body and OTHER_EMAIL not in body
            checked += 1
    with portal_db(portal_app) as session:
        assert _snapshot(session, zed.id) == before
    assert checked >= 4  # posts: detail, approve, edit, cancel (more as areas are added)


def _text(response: Any) -> str:
    """A response's text; a ZIP download's (``/data/download``) is the text of every file in it."""
    if response.mimetype == "application/zip":
        archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
        return "".join(archive.read(name).decode() for name in archive.namelist())
    return response.get_data(as_text=True)


def test_another_users_ids_in_queries_and_forms_change_and_show_nothing(
        portal_app: Flask, user: TestUser, other: tuple[TestUser, dict[str, int]]) -> None:
    zed, ids = other
    with portal_db(portal_app) as session:
        before = _snapshot(session, zed.id)
        own_ids = {name: make(session, user.id) for name, make in OTHER_USERS_ROWS.items()}
    fields = {name: ids.get(name, ids["post_id"]) for name in ID_FIELDS}
    checked = 0
    for rule in _rules(portal_app):
        url = _url(rule, own_ids)
        for method in _methods(rule):
            client = signed_in(portal_app.test_client(), portal_app, user)
            query = "&".join(f"{name}={value}" for name, value in fields.items())
            response = _call(client, method, f"{url}?{query}", {**fields, "text": "hijacked"})
            assert response.status_code < 500, f"{method} {url} failed with {response.status_code}"
            body = _text(response)
            assert secret_of(zed.id) not in body and OTHER_EMAIL not in body, f"{method} {url} shows the other user's data"
            checked += 1
    with portal_db(portal_app) as session:
        assert _snapshot(session, zed.id) == before
    assert checked >= 10
