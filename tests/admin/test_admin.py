"""The admin panel, through HTTP as an operator's browser uses it (CSRF included)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from admin import create_app
from admin.dashboard import dashboard_counts
from admin.reports import render_report
from admin.settings_form import format_posting_times, parse_posting_times
from app.clock import utcnow
from app.config import get_settings
from app.crypto import DEMO_KEY, TokenVault
from app.errors import ValidationError
from app.models import (
    AccountStatus,
    AuditLog,
    ExecutionStatus,
    MemoryEntry,
    Operator,
    PlatformAccount,
    Post,
    PostStatus,
    User,
    WorkflowExecution,
)
from app.users import create_user
from app.validation import settings_of
from tests.admin.conftest import OPERATOR, csrf_token, db

ADMIN_PAGES = [
    "/admin/",
    "/admin/users/",
    "/admin/accounts/",
    "/admin/posts/",
    "/admin/review/",
    "/admin/executions/",
    "/admin/jobs/",
    "/admin/audit/",
    "/admin/notifications/",
    "/admin/reports/",
]

ACCESS_TOKEN = "plain-access-token-7f3a9c"
REFRESH_TOKEN = "plain-refresh-token-c81d2e"

GOOD_SETTINGS = {
    "timezone": "Europe/Paris",
    "preferred_platforms": ["twitter"],
    "posting_times": {"twitter": ["09:00"]},
    "content_frequency": 3,
    "topics": ["python"],
}


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.get_data(as_text=True))


def add_user(app: Flask, email: str = "ada@example.com") -> int:
    with db(app) as session:
        return create_user(session, email, GOOD_SETTINGS, name="Ada", actor="test").id


def add_post(app: Flask, user_id: int, *, status: str = PostStatus.NEEDS_REVIEW,
             scheduled_at: datetime | None = None, **fields) -> int:  # type: ignore[no-untyped-def]
    with db(app) as session:
        post = Post(user_id=user_id, platform="twitter", text=fields.pop("text", "Hello world"),
                    status=status, scheduled_at=scheduled_at or utcnow() + timedelta(hours=2), **fields)
        session.add(post)
        session.flush()
        return post.id


def audit_rows(app: Flask, action: str) -> list[AuditLog]:
    with db(app) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


def get_post(app: Flask, post_id: int) -> Post:
    with db(app) as session:
        return session.get(Post, post_id)


# --- login ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ADMIN_PAGES + ["/admin/users/edit/?id=1", "/admin/accounts/details/?id=1"])
def test_every_admin_page_redirects_to_login_when_logged_out(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize(("username", "password"), [(OPERATOR, "wrong password!"), ("mallory", "whatever it is")])
def test_wrong_credentials_are_refused(client: FlaskClient, auth, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    response = auth.login(username, password)
    assert response.status_code == 200
    assert "Wrong username or password." in text_of(response)
    assert client.get("/admin/").status_code == 302


def test_login_goes_to_the_page_asked_for_and_logout_ends_the_session(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    response = auth.login(query_string={"next": "/admin/posts/"})
    assert response.headers["Location"] == "/admin/posts/"
    assert client.get("/admin/posts/").status_code == 200
    auth.logout()
    assert client.get("/admin/posts/").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_login_never_redirects_off_site(auth, target: str) -> None:  # type: ignore[no-untyped-def]
    response = auth.login(query_string={"next": target})
    assert response.headers["Location"] == "/admin/"


def test_passwords_are_stored_hashed(app: Flask) -> None:
    with db(app) as session:
        stored = session.scalar(select(Operator.password_hash).where(Operator.username == OPERATOR))
    assert "correct horse" not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))


def test_create_operator_command(app: Flask, runner) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(args=["create-operator", "bob"], input="a long enough secret\n" * 2)
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["create-operator", "bob"], input="a long enough secret\n" * 2)
    assert result.exit_code != 0
    assert "an operator with this name exists" in result.output


# --- CSRF -----------------------------------------------------------------------------------

def test_login_without_csrf_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": OPERATOR, "password": "correct horse battery"})
    assert response.status_code == 200
    assert "CSRF" in text_of(response)
    assert client.get("/admin/").status_code == 302


def test_settings_edit_without_csrf_token_writes_nothing(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    response = operator.post(f"/admin/users/edit/?id={user_id}", data={**form_data(), "timezone": "Asia/Tokyo"})
    assert "Failed to save record." in text_of(response)
    with db(app) as session:
        assert session.get(User, user_id).settings.timezone == "Europe/Paris"


def test_review_action_without_csrf_token_changes_nothing(app: Flask, operator: FlaskClient) -> None:
    post_id = add_post(app, add_user(app))
    operator.post("/admin/review/action/", data={"action": "cancel", "rowid": str(post_id)})
    assert get_post(app, post_id).status == PostStatus.NEEDS_REVIEW
    assert audit_rows(app, "post.cancelled") == []


def test_logout_without_csrf_token_keeps_the_session(operator: FlaskClient) -> None:
    operator.post("/logout", data={})
    assert operator.get("/admin/").status_code == 200


# --- pages ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_every_admin_page_renders_for_an_operator(app: Flask, operator: FlaskClient, url: str) -> None:
    add_post(app, add_user(app))
    response = operator.get(url)
    assert response.status_code == 200
    assert OPERATOR in text_of(response)  # the navbar says who is logged in


def test_dashboard_shows_todays_posts_failures_queue_and_reauth(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    now = utcnow()
    add_post(app, user_id, status=PostStatus.NEEDS_REVIEW, scheduled_at=now + timedelta(minutes=1), slot_at=now)
    with db(app) as session:
        session.add_all([
            WorkflowExecution(workflow="daily", user_id=user_id, status=ExecutionStatus.FAILED,
                              created_at=now - timedelta(hours=1), slot=now),
            WorkflowExecution(workflow="daily", user_id=user_id, status=ExecutionStatus.FAILED,
                              created_at=now - timedelta(hours=30), slot=now - timedelta(days=1)),
            PlatformAccount(user_id=user_id, platform="twitter", access_token_encrypted="x",
                            status=AccountStatus.NEEDS_REAUTH),
        ])
    page = text_of(operator.get("/admin/"))
    assert re.search(r'id="review-queue-size">1<', page)
    assert re.search(r'id="failed-executions">1<', page)
    assert re.search(r'id="accounts-reauth">1<', page)


def test_dashboard_counts_posts_of_the_utc_day_by_status(app: Flask) -> None:
    user_id = add_user(app)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    for hour, status in [(0, "published"), (9, "published"), (23, "scheduled"), (-1, "published"), (24, "scheduled")]:
        add_post(app, user_id, status=status, scheduled_at=datetime(2026, 11, 26, tzinfo=UTC) + timedelta(hours=hour),
                 slot_at=datetime(2026, 11, 26, tzinfo=UTC) + timedelta(hours=hour))
    with db(app) as session:
        counts = dashboard_counts(session, now)
    assert counts.day == "2026-11-26"
    assert counts.posts_today == [("published", 2), ("scheduled", 1)]


# --- users and settings ---------------------------------------------------------------------

def form_data(**changes: str) -> dict[str, str]:
    """The edit form as the browser submits it for GOOD_SETTINGS, with ``changes`` typed in."""
    data = {
        "name": "Ada",
        "timezone": "Europe/Paris",
        "preferred_platforms": "twitter",
        "content_frequency": "3",
        "posting_times": "twitter=09:00",
        "brand_voice": "professional",
        "creativity_level": "0.7",
        "topics": "python",
        "language": "en",
        "country": "us",
    }
    data.update(changes)
    return data


def test_users_can_be_searched_by_email(app: Flask, operator: FlaskClient) -> None:
    add_user(app, "ada@example.com")
    add_user(app, "grace@example.com")
    page = text_of(operator.get("/admin/users/?search=grace"))
    assert "grace@example.com" in page
    assert "ada@example.com" not in page


def test_edit_form_shows_current_settings(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    page = text_of(operator.get(f"/admin/users/edit/?id={user_id}"))
    assert 'value="Europe/Paris"' in page
    assert 'value="twitter=09:00"' in page


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Mars/Olympus_Mons"),
        ("posting_times", "twitter=25:00"),
        ("content_frequency", "0"),
        ("posting_times", "twitter 09:00"),
        ("creativity_level", "1.5"),
    ],
)
def test_a_bad_setting_is_flashed_by_name_and_value_and_nothing_is_written(
    app: Flask, operator: FlaskClient, field: str, value: str
) -> None:
    user_id = add_user(app)
    with db(app) as session:
        before = settings_of(session.get(User, user_id).settings)
    data = form_data(**{field: value}, name="Renamed", csrf_token=csrf_token(operator))
    response = operator.post(f"/admin/users/edit/?id={user_id}", data=data)
    page = text_of(response)
    assert response.status_code == 200  # the form again, with the operator's input
    flashed = [m for m in re.findall(r"Not saved\. ([^<]+)", page)]
    assert any(m.startswith(f"{field}:") for m in flashed), flashed
    assert any(value.split("=")[-1] in m for m in flashed), flashed
    with db(app) as session:
        user = session.get(User, user_id)
        assert settings_of(user.settings) == before
        assert user.name == "Ada"
    assert audit_rows(app, "user.updated") == []


def test_a_good_edit_is_saved_and_audited_with_the_operator(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    data = form_data(
        timezone="Asia/Tokyo",
        preferred_platforms="twitter, linkedin",
        posting_times="twitter=09:00; linkedin=17:00,10:00",
        content_frequency="5",
        topics="python\nrust",
        enable_autonomous_mode="y",
        csrf_token=csrf_token(operator),
    )
    response = operator.post(f"/admin/users/edit/?id={user_id}", data=data)
    assert response.status_code == 302
    with db(app) as session:
        settings = session.get(User, user_id).settings
        assert settings.timezone == "Asia/Tokyo"
        assert settings.posting_times == {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]}
        assert settings.content_frequency == 5
        assert settings.topics == ["python", "rust"]
        assert settings.enable_autonomous_mode is True
    [row] = audit_rows(app, "user.updated")
    assert row.actor == f"operator:{OPERATOR}"
    assert row.user_id == user_id
    # Only what changed is on record.
    assert set(row.details) == {"timezone", "preferred_platforms", "posting_times", "content_frequency",
                                "topics", "enable_autonomous_mode"}


def test_a_user_created_in_the_admin_is_validated_and_audited(app: Flask, operator: FlaskClient) -> None:
    data = {**form_data(), "email": "Lin@Example.com", "csrf_token": csrf_token(operator)}
    assert operator.post("/admin/users/new/", data=data).status_code == 302
    with db(app) as session:
        user = session.scalar(select(User).where(User.email == "lin@example.com"))
        assert user.settings.timezone == "Europe/Paris"
    [row] = audit_rows(app, "user.created")  # add_user was not called: this is the admin's
    assert row.actor == f"operator:{OPERATOR}"

    bad = {**data, "email": "other@example.com", "timezone": "Nowhere/Land"}
    page = text_of(operator.post("/admin/users/new/", data=bad))
    assert "Not saved. timezone:" in page and "Nowhere/Land" in page
    with db(app) as session:
        assert session.scalar(select(User).where(User.email == "other@example.com")) is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", {}),
        ("twitter=09:00", {"twitter": ["09:00"]}),
        ("twitter=09:00; linkedin=10:00,17:00", {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]}),
        ('{"linkedin": ["10:00"]}', {"linkedin": ["10:00"]}),
    ],
)
def test_posting_times_text_is_parsed(text: str, parsed: dict) -> None:  # type: ignore[type-arg]
    assert parse_posting_times(text) == parsed
    if text and not text.startswith("{"):
        assert parse_posting_times(format_posting_times(parsed)) == parsed


@pytest.mark.parametrize("text", ["twitter", "=09:00", "{not json", "[1, 2]"])
def test_unreadable_posting_times_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_posting_times(text)
    assert info.value.errors[0].field == "posting_times"


# --- platform accounts: tokens never rendered -----------------------------------------------

def test_tokens_never_appear_in_any_accounts_page(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    vault = TokenVault([DEMO_KEY])
    with db(app) as session:
        account = PlatformAccount(user_id=user_id, platform="twitter", handle="@ada",
                                  access_token_encrypted=vault.encrypt(ACCESS_TOKEN),
                                  refresh_token_encrypted=vault.encrypt(REFRESH_TOKEN),
                                  expires_at=utcnow() + timedelta(hours=1))
        session.add(account)
        session.flush()
        account_id = account.id
        ciphertexts = (account.access_token_encrypted, account.refresh_token_encrypted)
    secrets = (ACCESS_TOKEN, REFRESH_TOKEN, *ciphertexts, "access_token", "refresh_token")
    pages = [
        "/admin/accounts/",
        f"/admin/accounts/details/?id={account_id}",
        f"/admin/accounts/edit/?id={account_id}",
        "/admin/accounts/export/csv/",
        "/admin/accounts/?search=ada",
        f"/admin/users/details/?id={user_id}",
        f"/admin/users/edit/?id={user_id}",
        "/admin/",
    ]
    for url in pages:
        response = operator.get(url)
        assert response.status_code == 200, url
        body = text_of(response)
        for secret in secrets:
            assert secret not in body, f"{secret[:16]}... rendered on {url}"
    assert "@ada" in text_of(operator.get("/admin/accounts/"))


def test_an_account_status_change_is_audited_and_keeps_the_tokens(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    with db(app) as session:
        account = PlatformAccount(user_id=user_id, platform="linkedin", access_token_encrypted="cipher-a")
        session.add(account)
        session.flush()
        account_id = account.id
    data = {"status": "revoked", "csrf_token": csrf_token(operator),
            "access_token_encrypted": "injected"}  # a forged field is ignored
    assert operator.post(f"/admin/accounts/edit/?id={account_id}", data=data).status_code == 302
    with db(app) as session:
        account = session.get(PlatformAccount, account_id)
        assert (account.status, account.access_token_encrypted) == ("revoked", "cipher-a")
    [row] = audit_rows(app, "account.status_changed")
    assert row.actor == f"operator:{OPERATOR}"


# --- posts and the review queue -------------------------------------------------------------

def test_sandbox_posts_are_labelled_simulated(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    add_post(app, user_id, status=PostStatus.PUBLISHED, external_id="sandbox-42", slot_at=utcnow())
    add_post(app, user_id, status=PostStatus.PUBLISHED, external_id="1789", slot_at=utcnow() + timedelta(days=1))
    page = text_of(operator.get("/admin/posts/"))
    assert page.count("sandbox (simulated)") == 1
    assert "1789" in page


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        # Filter indexes follow PostView.column_filters: status, platform, then user email ops.
        ({"flt0_0": "published"}, {"PUBLISHED-ADA"}),
        ({"flt0_1": "linkedin"}, {"LINKEDIN-GRACE"}),
        ({"flt0_4": "grace@example.com"}, {"LINKEDIN-GRACE"}),
    ],
)
def test_posts_filter_by_status_platform_and_user(
    app: Flask, operator: FlaskClient, query: dict[str, str], shown: set[str]
) -> None:
    ada, grace = add_user(app, "ada@example.com"), add_user(app, "grace@example.com")
    now = utcnow()
    add_post(app, ada, text="PUBLISHED-ADA", status=PostStatus.PUBLISHED, slot_at=now)
    add_post(app, ada, text="REVIEW-ADA", slot_at=now + timedelta(days=1))
    with db(app) as session:
        session.add(Post(user_id=grace, platform="linkedin", text="LINKEDIN-GRACE", status="scheduled",
                         scheduled_at=now + timedelta(hours=1)))
    page = text_of(operator.get("/admin/posts/", query_string=query))
    assert {t for t in ("PUBLISHED-ADA", "REVIEW-ADA", "LINKEDIN-GRACE") if t in page} == shown


def test_posts_are_listed_newest_scheduled_first(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    now = utcnow()
    early = add_post(app, user_id, text="EARLY-POST", scheduled_at=now + timedelta(hours=1), slot_at=now)
    late = add_post(app, user_id, text="LATE-POST", scheduled_at=now + timedelta(hours=5),
                    slot_at=now + timedelta(hours=1))
    assert early < late
    page = text_of(operator.get("/admin/posts/"))
    assert page.index("LATE-POST") < page.index("EARLY-POST")


def test_review_queue_lists_only_posts_needing_review_with_reason_and_error(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    add_post(app, user_id, text="WAITING", review_reason="outcome_unknown", last_error="timeout after send",
             slot_at=utcnow())
    add_post(app, user_id, text="ALREADY-OUT", status=PostStatus.PUBLISHED, slot_at=utcnow() + timedelta(days=1))
    page = text_of(operator.get("/admin/review/"))
    assert "WAITING" in page and "outcome_unknown" in page and "timeout after send" in page
    assert "ALREADY-OUT" not in page


def review_action(client: FlaskClient, action: str, *post_ids: int):  # type: ignore[no-untyped-def]
    data = {"action": action, "rowid": [str(i) for i in post_ids], "csrf_token": csrf_token(client)}
    return client.post("/admin/review/action/", data=data, follow_redirects=True)


def test_approve_keeps_a_future_time_and_is_audited(app: Flask, operator: FlaskClient) -> None:
    at = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    post_id = add_post(app, add_user(app), scheduled_at=at, review_reason="approval")
    page = text_of(review_action(operator, "approve", post_id))
    assert f"Post {post_id} approved." in page
    post = get_post(app, post_id)
    assert (post.status, post.scheduled_at, post.review_reason) == (PostStatus.SCHEDULED, at, None)
    [row] = audit_rows(app, "post.approved")
    assert (row.post_id, row.actor) == (post_id, f"operator:{OPERATOR}")


def test_approve_now_schedules_for_now(app: Flask, operator: FlaskClient) -> None:
    post_id = add_post(app, add_user(app), scheduled_at=utcnow() + timedelta(hours=3))
    review_action(operator, "approve_now", post_id)
    post = get_post(app, post_id)
    assert post.status == PostStatus.SCHEDULED
    assert post.scheduled_at <= utcnow() + timedelta(seconds=5)


def test_cancel_is_audited_with_the_operator(app: Flask, operator: FlaskClient) -> None:
    post_id = add_post(app, add_user(app))
    page = text_of(review_action(operator, "cancel", post_id))
    assert f"Post {post_id} cancelled." in page
    assert get_post(app, post_id).status == PostStatus.CANCELLED
    [row] = audit_rows(app, "post.cancelled")
    assert (row.post_id, row.actor) == (post_id, f"operator:{OPERATOR}")


def test_an_action_refused_by_app_posts_is_flashed_and_the_others_still_apply(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    published = add_post(app, user_id, status=PostStatus.PUBLISHED, slot_at=utcnow())
    waiting = add_post(app, user_id, slot_at=utcnow() + timedelta(days=1))
    page = text_of(review_action(operator, "cancel", published, waiting))
    assert f"Post {published} not cancelled: status:" in page
    assert get_post(app, published).status == PostStatus.PUBLISHED
    assert get_post(app, waiting).status == PostStatus.CANCELLED


def test_edit_and_reschedule_goes_through_app_posts(app: Flask, operator: FlaskClient) -> None:
    post_id = add_post(app, add_user(app), text="old text")
    at = (utcnow() + timedelta(days=1)).replace(second=0, microsecond=0)
    data = {"text": "new text", "at": at.strftime("%Y-%m-%dT%H:%M"), "csrf_token": csrf_token(operator)}
    assert operator.post(f"/admin/review/edit/?id={post_id}", data=data).status_code == 302
    post = get_post(app, post_id)
    assert (post.status, post.text, post.scheduled_at) == (PostStatus.SCHEDULED, "new text", at)
    [row] = audit_rows(app, "post.approved")
    assert row.actor == f"operator:{OPERATOR}" and row.details["edited"] is True


@pytest.mark.parametrize(
    ("text", "at", "fragment"),
    [
        ("new text", "2001-01-01T09:00", "at: must be in the future"),
        ("x" * 400, "", "text:"),
    ],
)
def test_a_refused_reschedule_is_flashed_and_changes_nothing(
    app: Flask, operator: FlaskClient, text: str, at: str, fragment: str
) -> None:
    post_id = add_post(app, add_user(app), text="old text")
    data = {"text": text, "at": at, "csrf_token": csrf_token(operator)}
    page = text_of(operator.post(f"/admin/review/edit/?id={post_id}", data=data))
    assert fragment in page
    post = get_post(app, post_id)
    assert (post.status, post.text) == (PostStatus.NEEDS_REVIEW, "old text")
    assert audit_rows(app, "post.approved") == []


def test_review_edit_refuses_a_post_not_in_the_queue(app: Flask, operator: FlaskClient) -> None:
    post_id = add_post(app, add_user(app), status=PostStatus.PUBLISHED)
    data = {"text": "rewrite history", "at": "", "csrf_token": csrf_token(operator)}
    operator.post(f"/admin/review/edit/?id={post_id}", data=data)
    assert get_post(app, post_id).text == "Hello world"


def test_read_only_views_refuse_writes(app: Flask, operator: FlaskClient) -> None:
    post_id = add_post(app, add_user(app))
    token = csrf_token(operator)
    operator.post("/admin/posts/delete/", data={"id": str(post_id), "csrf_token": token})
    operator.post(f"/admin/posts/edit/?id={post_id}", data={"text": "changed", "csrf_token": token})
    post = get_post(app, post_id)
    assert (post.status, post.text) == (PostStatus.NEEDS_REVIEW, "Hello world")


# --- weekly reports -------------------------------------------------------------------------

def test_weekly_reports_render_summary_recommendations_and_the_rest(app: Flask, operator: FlaskClient) -> None:
    user_id = add_user(app)
    content = {"summary": "Best week <so far>", "recommendations": ["Post at 09:00", "More threads"],
               "top_posts": [{"id": 7, "engagement_rate": 0.12}]}
    with db(app) as session:
        report = MemoryEntry(user_id=user_id, kind="insight", key="2026-W48", content=content)
        session.add_all([report, MemoryEntry(user_id=user_id, kind="research", key="RESEARCH-ONLY", content={})])
        session.flush()
        report_id = report.id
    listing = text_of(operator.get("/admin/reports/"))
    assert "Best week <so far>" in listing and "RESEARCH-ONLY" not in listing
    raw = operator.get(f"/admin/reports/details/?id={report_id}").get_data(as_text=True)
    assert "Best week &lt;so far&gt;" in raw  # escaped, not injected
    assert "<li>Post at 09:00</li>" in raw
    assert "engagement_rate" in raw


def test_render_report_shows_unknown_shapes_as_json() -> None:
    assert "<pre>" in render_report(["not", "a", "dict"])
    assert "&#34;recommendations&#34;" in render_report({"recommendations": "one string"}) or \
        "&quot;recommendations&quot;" in render_report({"recommendations": "one string"})


# --- app factory ----------------------------------------------------------------------------

def test_create_app_reads_secret_and_database_from_settings(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    get_settings.cache_clear()
    try:
        app = create_app()
    finally:
        get_settings.cache_clear()
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert app.config["DATABASE_URL"] == url
    assert str(app.extensions["autopilot"].engine.url) == url


def test_an_operator_changes_or_removes_a_reviewed_posts_image_from_the_users_library(
        app: Flask, operator: FlaskClient, tmp_path) -> None:
    from app.media.library import add_image
    from app.media.storage import LocalStorage
    from app.models import MediaItem
    from tests.media.images import image_bytes

    storage = LocalStorage(tmp_path, "https://cdn.example.test")
    owner, other = add_user(app), add_user(app, "other@example.com")
    with db(app) as session:
        mine = add_image(session, storage, owner, image_bytes(), alt_text="Owner's chart").id
        theirs = add_image(session, storage, other, image_bytes(), alt_text="Someone else's").id
        add_image(session, storage, owner, image_bytes(), alt_text="A drawn lighthouse", generated=True)
    post_id = add_post(app, owner, text="with a chart")
    page = text_of(operator.get(f"/admin/review/edit/?id={post_id}"))
    assert "Owner's chart" in page and "Someone else's" not in page
    assert "A drawn lighthouse (generated)" in page and "Owner's chart (generated)" not in page
    data = {"text": "with a chart", "at": "", "image": str(mine), "csrf_token": csrf_token(operator)}
    assert operator.post(f"/admin/review/edit/?id={post_id}", data=data).status_code == 302
    assert get_post(app, post_id).media_id == mine
    [row] = audit_rows(app, "post.image_changed")
    assert row.actor == f"operator:{OPERATOR}" and row.details == {"media_id": mine}
    # Another user's image is not a choice: refused, nothing changes.
    other_post = add_post(app, owner, text="second")
    data = {"text": "second", "at": "", "image": str(theirs), "csrf_token": csrf_token(operator)}
    operator.post(f"/admin/review/edit/?id={other_post}", data=data)
    assert get_post(app, other_post).media_id is None
    with db(app) as session:
        assert session.get(MediaItem, theirs) is not None
