"""Editing through the admin as a browser sends it, and pages an operator can read.

Line endings as browsers send them, every bad field reported at once, ids that are not ids,
save-and-continue, audit rows linked to their user and post, names and account statuses,
expired forms; then times, expiry, long texts and simulated reports shown readably.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta
from hashlib import sha1

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from admin.filters import filter_time, filtered_list_url
from app import posts
from app.clock import utcnow
from app.errors import ValidationError
from app.models import AuditLog, PlatformAccount, Post, PostStatus, User
from app.validation import validate_settings
from app.x_weighted import x_weighted_length
from tests.admin.conftest import OPERATOR, csrf_token, db
from tests.admin.seed import MULTI_LINE_POST
from tests.admin.test_admin import add_post, add_user, audit_rows, form_data, get_post, text_of

ENDPOINTS = ["users", "accounts", "posts", "review", "executions", "jobs", "audit", "notifications", "reports"]


# --- line endings ------------------------------------------------------------------------

def test_changing_only_the_time_of_a_multi_line_post_is_not_an_edit(app: Flask, operator: FlaskClient) -> None:
    assert x_weighted_length(MULTI_LINE_POST) == 276
    assert x_weighted_length(MULTI_LINE_POST.replace("\n", "\r\n")) == 283  # what the browser sends
    post_id = add_post(app, add_user(app), text=MULTI_LINE_POST)
    at = (utcnow() + timedelta(days=1)).replace(second=0, microsecond=0)
    data = {"text": MULTI_LINE_POST.replace("\n", "\r\n"), "at": at.strftime("%Y-%m-%dT%H:%M"),
            "csrf_token": csrf_token(operator)}
    assert operator.post(f"/admin/review/edit/?id={post_id}", data=data).status_code == 302
    post = get_post(app, post_id)
    assert (post.status, post.text, post.scheduled_at) == (PostStatus.SCHEDULED, MULTI_LINE_POST, at)
    [row] = audit_rows(app, "post.approved")
    assert row.details["edited"] is False


def test_an_edited_text_is_stored_with_plain_line_breaks(app: Flask) -> None:
    post_id = add_post(app, add_user(app), text="old")
    with db(app) as session:
        posts.approve(session, post_id, now=utcnow(), text="line one\r\nline two\rline three", actor="cli")
    assert get_post(app, post_id).text == "line one\nline two\nline three"


# --- every bad setting at once -----------------------------------------------------------

def test_a_bad_posting_time_is_reported_with_an_earlier_bad_field(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    data = form_data(timezone="Mars/Olympus_Mons", posting_times="twitter=25:00", csrf_token=csrf_token(operator))
    page = text_of(operator.post(f"/admin/users/edit/?id={user_id}", data=data))
    flashed = re.findall(r"Not saved\. ([^<]+)", page)
    assert any(m.startswith("timezone:") for m in flashed), flashed
    assert any(m.startswith("posting_times:") and "25:00" in m for m in flashed), flashed


def test_a_blank_platform_entry_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        validate_settings({"preferred_platforms": "twitter, , linkedin"})
    assert info.value.errors[0].field == "preferred_platforms"
    assert "empty entry" in info.value.errors[0].reason
    with pytest.raises(ValidationError):
        validate_settings({"preferred_platforms": ["twitter", ""]})
    assert validate_settings({"preferred_platforms": ""}).preferred_platforms == []


# --- non-numeric ids ---------------------------------------------------------------------

def test_an_id_that_is_not_an_id_is_a_404_on_every_details_and_edit_page(operator: FlaskClient) -> None:
    answers = {
        (endpoint, page, bad_id): operator.get(f"/admin/{endpoint}/{page}/?id={bad_id}").status_code
        for endpoint in ENDPOINTS for page in ("details", "edit") for bad_id in ("abc", "1e3", "99999999999")
    }
    assert answers == dict.fromkeys(answers, 404)


# --- save and continue editing -----------------------------------------------------------

def test_save_and_continue_editing_in_the_review_queue_lands_on_the_post(app: Flask, operator: FlaskClient) -> None:
    post_id = add_post(app, add_user(app), text="old text")
    data = {"text": "new text", "at": "", "_continue_editing": "Save and Continue Editing",
            "csrf_token": csrf_token(operator)}
    response = operator.post(f"/admin/review/edit/?id={post_id}", data=data, follow_redirects=True)
    page = text_of(response)
    assert "Record does not exist." not in page
    assert f"Post {post_id} left the review queue" in page
    assert response.request.path == "/admin/posts/details/"
    assert get_post(app, post_id).text == "new text"


# --- the audit log says which user and post ----------------------------------------------

def test_the_audit_log_links_user_and_post_and_filters_by_each(app: Flask, operator: FlaskClient) -> None:
    ada, grace = add_user(app, "ada@example.com"), add_user(app, "grace@example.com")
    ada_post = add_post(app, ada, slot_at=utcnow())
    grace_post = add_post(app, grace, slot_at=utcnow() + timedelta(days=1))
    for post_id in (ada_post, grace_post):
        review = {"action": "cancel", "rowid": [str(post_id)], "csrf_token": csrf_token(operator)}
        operator.post("/admin/review/action/", data=review)
    raw = operator.get("/admin/audit/").get_data(as_text=True)
    assert f'href="/admin/users/details/?id={ada}">ada@example.com</a>' in raw
    assert f'href="/admin/posts/details/?id={ada_post}">post {ada_post}</a>' in raw

    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "audit")
    hour_ago = filter_time(utcnow() - timedelta(hours=1))
    cases = {
        "user": ([("User email", "contains", "grace")], {"grace"}),
        "post": ([("Post id", "equals", str(ada_post))], {"ada"}),
        "action": ([("Action", "equals", "post.cancelled")], {"ada", "grace"}),
        "actor": ([("Actor", "equals", f"operator:{OPERATOR}"), ("User email", "contains", "ada")], {"ada"}),
        "time": ([("When (UTC)", "greater than", hour_ago), ("Action", "equals", "post.cancelled")], {"ada", "grace"}),
    }
    for name, (filters, shown) in cases.items():
        with app.test_request_context():
            url = filtered_list_url(view, filters)
        page = text_of(operator.get(url))
        rows = re.findall(r"post\.cancelled", page)
        seen = {who for who in ("ada", "grace") if f"{who}@example.com" in page}
        assert seen == shown and rows, (name, url)
    with app.test_request_context():
        future = filtered_list_url(view, [("When (UTC)", "greater than", filter_time(utcnow() + timedelta(hours=1)))])
    assert "post.cancelled" not in text_of(operator.get(future))


# --- user names and account statuses -----------------------------------------------------

def test_clearing_a_name_renaming_and_a_no_op_save(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)  # named "Ada"
    edit = f"/admin/users/edit/?id={user_id}"
    assert operator.post(edit, data=form_data(csrf_token=csrf_token(operator))).status_code == 302
    assert audit_rows(app, "user.updated") == []  # nothing changed, nothing written

    assert operator.post(edit, data=form_data(name="Ada L.", csrf_token=csrf_token(operator))).status_code == 302
    [renamed] = audit_rows(app, "user.updated")
    assert renamed.details == {"name": {"from": "Ada", "to": "Ada L."}}

    assert operator.post(edit, data=form_data(name="  ", csrf_token=csrf_token(operator))).status_code == 302
    with db(app) as session:
        assert session.get(User, user_id).name is None
    cleared = [r.details for r in audit_rows(app, "user.updated")]
    assert {"name": {"from": "Ada L.", "to": None}} in cleared


def test_an_account_status_change_records_the_old_status_and_only_when_changed(
    app: Flask, operator: FlaskClient
) -> None:
    user_id = add_user(app)
    with db(app) as session:
        account = PlatformAccount(user_id=user_id, platform="twitter", access_token_encrypted="c")
        session.add(account)
        session.flush()
        account_id = account.id
    edit = f"/admin/accounts/edit/?id={account_id}"
    operator.post(edit, data={"status": "active", "csrf_token": csrf_token(operator)})
    assert audit_rows(app, "account.status_changed") == []
    operator.post(edit, data={"status": "revoked", "csrf_token": csrf_token(operator)})
    [row] = audit_rows(app, "account.status_changed")
    assert row.details == {"platform": "twitter", "from": "active", "to": "revoked"}


# --- an expired form ------------------------------------------------------------------------

def _expired_token(client: FlaskClient, secret: str) -> str:
    """A CSRF token as wtforms' SessionCSRF makes it, whose expiry is a minute ago."""
    csrf_token(client)  # makes sure the session has its CSRF secret
    with client.session_transaction() as session:
        session_csrf = session["csrf"]
    expires = (datetime.now() - timedelta(minutes=1)).strftime("%Y%m%d%H%M%S")  # SessionCSRF uses local time
    digest = hmac.new(secret.encode(), (session_csrf + expires).encode(), digestmod=sha1).hexdigest()
    return f"{expires}##{digest}"


def test_an_expired_form_says_so_and_keeps_the_input(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    data = form_data(timezone="Asia/Tokyo", brand_voice="playful and warm",
                     csrf_token=_expired_token(operator, app.config["SECRET_KEY"]))
    page = text_of(operator.post(f"/admin/users/edit/?id={user_id}", data=data))
    assert "This form expired" in page
    assert 'value="playful and warm"' in page and 'value="Asia/Tokyo"' in page
    with db(app) as session:
        assert session.get(User, user_id).settings.timezone == "Europe/Paris"


def test_an_expired_login_form_says_so(app: Flask, client: FlaskClient) -> None:
    data = {"username": OPERATOR, "password": "x", "csrf_token": _expired_token(client, app.config["SECRET_KEY"])}
    page = text_of(client.post("/login", data=data))
    assert "The login form expired" in page and f'value="{OPERATOR}"' in page


# --- readable pages -------------------------------------------------------------------------

def test_times_show_no_microseconds_and_the_users_local_time(app: Flask, operator: FlaskClient) -> None:
    at = utcnow().replace(microsecond=123456) + timedelta(hours=3)
    add_post(app, add_user(app), scheduled_at=at)
    page = text_of(operator.get("/admin/posts/"))
    assert at.strftime("%Y-%m-%d %H:%M:%S UTC") in page
    assert ".123456" not in page and "+00:00" not in page
    local = at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()} local" in page


def test_accounts_show_expiry_and_refresh_and_the_dashboard_counts_dead_tokens(
    app: Flask, operator: FlaskClient
) -> None:
    user_id = add_user(app)
    now = utcnow()
    with db(app) as session:
        session.add_all([
            PlatformAccount(user_id=user_id, platform="twitter", access_token_encrypted="c",
                            refresh_token_encrypted="r", expires_at=now - timedelta(hours=1)),  # can refresh
            PlatformAccount(user_id=user_id, platform="linkedin", access_token_encrypted="c",
                            expires_at=now - timedelta(hours=1)),  # dead
        ])
    page = text_of(operator.get("/admin/accounts/"))
    assert "Can refresh" in page and "expired" in page
    dashboard = operator.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="accounts-reauth">1<', dashboard)
    link = re.search(r'id="accounts-reauth-link" href="([^"]+)"', dashboard).group(1)
    listed = text_of(operator.get(link.replace("&amp;", "&")))
    assert "List (1)" in listed and "Needs re-authorisation" in listed


def test_review_and_user_edit_pages_say_what_is_edited(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    post_id = add_post(app, user_id)
    assert "Editing user ada@example.com (Ada)" in text_of(operator.get(f"/admin/users/edit/?id={user_id}"))
    assert f"Reviewing post {post_id} of ada@example.com" in text_of(operator.get(f"/admin/review/edit/?id={post_id}"))
    details = text_of(operator.get(f"/admin/users/details/?id={user_id}"))
    assert "settings-table" in details and "{'" not in details


def test_posts_are_never_listed_with_their_whole_long_text(app: Flask, operator: FlaskClient) -> None:
    long_text = "word " * 200
    post_id = add_post(app, add_user(app), text=long_text.strip())
    listing = operator.get("/admin/posts/").get_data(as_text=True)
    assert "word word word" in listing and long_text.strip() not in listing
    assert long_text.strip() in text_of(operator.get(f"/admin/posts/details/?id={post_id}"))


def test_a_weekly_report_on_simulated_posts_is_labelled(app: Flask, operator: FlaskClient) -> None:
    from app.models import MemoryEntry

    user_id = add_user(app)
    sandbox = add_post(app, user_id, status=PostStatus.PUBLISHED, external_id="sandbox-9", slot_at=utcnow())
    real = add_post(app, user_id, status=PostStatus.PUBLISHED, external_id="17", slot_at=utcnow() + timedelta(days=1))
    with db(app) as session:
        for key, post_id in (("SIMULATED-WEEK", sandbox), ("REAL-WEEK", real)):
            session.add(MemoryEntry(user_id=user_id, kind="insight", key=key, content={
                "summary": key, "top": [{"post_id": post_id, "excerpt": "x", "engagement_rate": 0.1}],
                "bottom": [], "recommendations": ["Keep going"]}))
    listing = operator.get("/admin/reports/").get_data(as_text=True)
    rows = {key: row for row in listing.split("<tr") for key in ("SIMULATED-WEEK", "REAL-WEEK") if key in row}
    assert "simulated" in rows["SIMULATED-WEEK"] and "simulated" not in rows["REAL-WEEK"]
    assert "ada@example.com" in listing
    with db(app) as session:
        report_id = session.scalar(select(MemoryEntry.id).where(MemoryEntry.key == "SIMULATED-WEEK"))
    details = text_of(operator.get(f"/admin/reports/details/?id={report_id}"))
    assert "Top posts" in details and "Recommendations" in details and "not real engagement" in details


def test_audit_rows_exist_for_every_review_action(app: Flask) -> None:
    # The audit view's user/post relationships are read-only: writing through them is refused.
    with db(app) as session:
        assert AuditLog.user.property.viewonly and AuditLog.post.property.viewonly
        assert session.scalars(select(Post)).all() == []
