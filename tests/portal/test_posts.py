"""The user's own posts: local times, and approve / edit / reschedule / cancel as the review queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.clock import utcnow
from app.models import AuditLog, PlatformAccount, Post, PostStatus, ReviewReason
from tests.portal.conftest import TestUser, csrf_token, portal_db


def _post(portal_app: Flask, user: TestUser, status: PostStatus = PostStatus.NEEDS_REVIEW, **values: object) -> int:
    with portal_db(portal_app) as session:
        post = Post(user_id=user.id, platform="twitter", text="Hello from the autopilot", status=status,
                    review_reason=ReviewReason.APPROVAL if status == PostStatus.NEEDS_REVIEW else None,
                    scheduled_at=utcnow() + timedelta(days=2), **values)
        session.add(post)
        session.flush()
        return post.id


def _audit(portal_app: Flask, post_id: int) -> list[AuditLog]:
    with portal_db(portal_app) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.post_id == post_id)).all()
        session.expunge_all()
        return list(rows)


def test_upcoming_posts_show_in_the_users_local_time(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    post_id = _post(portal_app, user, PostStatus.SCHEDULED)
    with portal_db(portal_app) as session:
        at = session.get(Post, post_id).scheduled_at
    local = at.astimezone(ZoneInfo("Europe/Paris"))
    page = user_client.get("/posts/").get_data(as_text=True)
    assert f"{local:%H:%M} {local.tzname()}" in page and "Hello from the autopilot" in page


def test_the_user_approves_a_post_waiting_for_them(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    post_id = _post(portal_app, user)
    url = f"/posts/{post_id}"
    response = user_client.post(f"{url}/approve", data={"csrf_token": csrf_token(user_client, url)})
    assert response.status_code == 302
    with portal_db(portal_app) as session:
        assert session.get(Post, post_id).status == PostStatus.SCHEDULED
    [audit] = _audit(portal_app, post_id)
    assert audit.action == "post.approved" and audit.actor == f"user:{user.id}"


def test_edit_and_reschedule_in_local_time(user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    post_id = _post(portal_app, user)
    url = f"/posts/{post_id}"
    wall = (utcnow() + timedelta(days=3)).astimezone(ZoneInfo("Europe/Paris")).replace(
        hour=9, minute=15, second=0, microsecond=0, tzinfo=None)
    response = user_client.post(f"{url}/edit", data={
        "csrf_token": csrf_token(user_client, url), "text": "Edited\r\ntext", "at": f"{wall:%Y-%m-%dT%H:%M}"})
    assert response.status_code == 302
    with portal_db(portal_app) as session:
        post = session.get(Post, post_id)
        assert post.text == "Edited\ntext" and post.status == PostStatus.SCHEDULED
        assert post.scheduled_at == wall.replace(tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    [audit] = _audit(portal_app, post_id)
    assert audit.details["edited"] is True and audit.actor == f"user:{user.id}"


def test_a_refused_edit_says_why_and_changes_nothing(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    post_id = _post(portal_app, user)
    url = f"/posts/{post_id}"
    response = user_client.post(f"{url}/edit", data={
        "csrf_token": csrf_token(user_client, url), "text": "x" * 300, "at": ""})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "280" in page and "x" * 300 in page  # the limit named, the input kept
    response = user_client.post(f"{url}/edit", data={
        "csrf_token": csrf_token(user_client, url), "text": "Fine text", "at": "2001-01-01T09:00"})
    assert response.status_code == 400 and "must be in the future" in response.get_data(as_text=True)
    with portal_db(portal_app) as session:
        post = session.get(Post, post_id)
        assert post.text == "Hello from the autopilot" and post.status == PostStatus.NEEDS_REVIEW


def test_cancel_and_a_published_post_cannot_be_cancelled(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    post_id = _post(portal_app, user)
    user_client.post(f"/posts/{post_id}/cancel", data={"csrf_token": csrf_token(user_client, f"/posts/{post_id}")})
    published = _post(portal_app, user, PostStatus.PUBLISHED, external_id="1790000000000000001",
                      published_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    response = user_client.post(f"/posts/{published}/cancel",
                                data={"csrf_token": csrf_token(user_client, f"/posts/{published}")})
    assert response.status_code == 400
    with portal_db(portal_app) as session:
        assert session.get(Post, post_id).status == PostStatus.CANCELLED
        assert session.get(Post, published).status == PostStatus.PUBLISHED
    page = user_client.get("/posts/").get_data(as_text=True)
    assert 'href="https://x.com/i/web/status/1790000000000000001"' in page


def test_forms_without_the_csrf_token_are_refused(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    post_id = _post(portal_app, user)
    response = user_client.post(f"/posts/{post_id}/cancel")
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    with portal_db(portal_app) as session:
        assert session.get(Post, post_id).status == PostStatus.NEEDS_REVIEW


def test_long_lists_are_paged(user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    with portal_db(portal_app) as session:
        session.add_all([Post(user_id=user.id, platform="twitter", text=f"numbered post {n:02d}",
                              status=PostStatus.SCHEDULED, scheduled_at=utcnow() + timedelta(hours=n + 1))
                         for n in range(30)])
    first = user_client.get("/posts/").get_data(as_text=True)
    assert "numbered post 24" in first and "numbered post 25" not in first
    assert 'href="/posts/?upcoming=2"' in first
    second = user_client.get("/posts/?upcoming=2").get_data(as_text=True)
    assert "numbered post 25" in second and "numbered post 29" in second and "numbered post 24" not in second
    assert 'href="/posts/?upcoming=1"' in second


def test_a_published_mastodon_post_links_to_its_status_on_the_accounts_instance(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    with portal_db(portal_app) as session:
        session.add(PlatformAccount(user_id=user.id, platform="mastodon", handle="@ada@social.example",
                                    external_id="109", service_url="https://social.example",
                                    access_token_encrypted="x"))
    published = _post(portal_app, user, PostStatus.PUBLISHED, external_id="113000000000000001",
                      published_at=utcnow() - timedelta(hours=1))
    with portal_db(portal_app) as session:
        session.get(Post, published).platform = "mastodon"
    link = 'href="https://social.example/@ada/113000000000000001"'
    assert link in user_client.get("/posts/").get_data(as_text=True)
    assert link in user_client.get(f"/posts/{published}").get_data(as_text=True)


def test_posts_waiting_for_approval_are_paged_and_counted_whole(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    with portal_db(portal_app) as session:
        session.add_all([Post(user_id=user.id, platform="twitter", text=f"waiting post {n:02d}",
                              status=PostStatus.NEEDS_REVIEW, review_reason=ReviewReason.APPROVAL,
                              scheduled_at=utcnow() + timedelta(hours=n + 1)) for n in range(60)])
    first = user_client.get("/posts/").get_data(as_text=True)
    assert "Waiting for you (60)" in first
    assert "waiting post 24" in first and "waiting post 25" not in first
    assert 'href="/posts/?waiting=2"' in first
    last = user_client.get("/posts/?waiting=3").get_data(as_text=True)
    # Past the 50 the page used to stop at: every waiting post can be reached.
    assert "waiting post 50" in last and "waiting post 59" in last and "waiting post 49" not in last
    assert 'href="/posts/?waiting=2"' in last and "?waiting=4" not in last
