"""The user's own settings: the one validation, the user as the audit actor, autonomous off."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.clock import utcnow
from app.models import AuditLog, Post, PostStatus, ReviewReason, UserSettings
from app.platforms import PLATFORMS
from tests.portal.conftest import TestUser, csrf_token, portal_db

FORM = {
    "enable_autonomous_mode": "on", "timezone": "America/New_York", "platform_twitter": "on",
    "times_twitter": "08:30, 18:00", "times_linkedin": "", "content_frequency": "5",
    "brand_voice": "friendly and precise", "creativity_level": "0.4", "topics": "python\nflask\n",
    "language": "en", "country": "us",
}


def _save(client: FlaskClient, **changes: str) -> object:
    data = {**FORM, **changes, "csrf_token": csrf_token(client, "/settings/")}
    return client.post("/settings/", data={k: v for k, v in data.items() if v is not None})


def test_the_form_shows_the_stored_settings(user_client: FlaskClient) -> None:
    page = user_client.get("/settings/").get_data(as_text=True)
    assert 'value="Europe/Paris"' in page and 'value="09:00"' in page
    assert '<option value="America/New_York">' in page  # the searchable list


def test_a_save_is_validated_applied_and_audited_with_the_user_as_actor(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    response = _save(user_client, require_approval="on")
    assert response.status_code == 302
    with portal_db(portal_app) as session:
        settings = session.scalar(select(UserSettings).where(UserSettings.user_id == user.id))
        assert settings.timezone == "America/New_York"
        assert settings.posting_times == {"twitter": ["08:30", "18:00"]}
        assert settings.topics == ["python", "flask"] and settings.require_approval
        assert settings.creativity_level == 0.4 and settings.content_frequency == 5
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "user.updated")).one()
        assert audit.actor == f"user:{user.id}" and audit.details["timezone"] == "America/New_York"


def test_bad_values_are_all_reported_and_nothing_is_written(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    response = _save(user_client, timezone="Mars/Olympus", content_frequency="40", times_twitter="25:00",
                     creativity_level="abc")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for reason in ("unknown IANA time zone", "from 1 to 14", "is not a time", "from 0.0 to 1.0"):
        assert reason in page
    assert 'value="Mars/Olympus"' in page  # the input is kept to be fixed
    with portal_db(portal_app) as session:
        assert session.scalar(select(UserSettings.timezone).where(UserSettings.user_id == user.id)) == "Europe/Paris"


def test_every_registered_platform_has_its_checkbox_and_posting_times(user_client: FlaskClient) -> None:
    page = user_client.get("/settings/").get_data(as_text=True)
    assert len(PLATFORMS) == 4
    for key, platform in PLATFORMS.items():
        assert f'name="platform_{key}"' in page and f'name="times_{key}"' in page
        assert f"Posting times on {platform.display_name}" in page


def test_post_visibility_is_offered_for_the_platforms_that_choose_audiences_and_validated(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    choosing = [p.display_name for p in PLATFORMS.values() if p.chooses_visibility]
    assert choosing  # the registry names at least one (Mastodon)
    page = user_client.get("/settings/").get_data(as_text=True)
    assert f"Who sees your posts on {' and '.join(choosing)}" in page
    assert '<option value="public" selected>' in page
    assert _save(user_client, post_visibility="unlisted").status_code == 302
    with portal_db(portal_app) as session:
        assert session.scalar(select(UserSettings.post_visibility).where(UserSettings.user_id == user.id)) \
            == "unlisted"
    assert '<option value="unlisted" selected>' in user_client.get("/settings/").get_data(as_text=True)
    refused = _save(user_client, post_visibility="everyone")
    assert refused.status_code == 400 and "expected one of public, unlisted, private" in refused.get_data(as_text=True)
    with portal_db(portal_app) as session:
        assert session.scalar(select(UserSettings.post_visibility).where(UserSettings.user_id == user.id)) \
            == "unlisted"


def _schedule(portal_app: Flask, user: TestUser, count: int) -> list[int]:
    with portal_db(portal_app) as session:
        posts = [Post(user_id=user.id, platform="twitter", text=f"post {n}", status=PostStatus.SCHEDULED,
                      scheduled_at=utcnow() + timedelta(days=1, minutes=n)) for n in range(count)]
        posts.append(Post(user_id=user.id, platform="twitter", text="waiting", status=PostStatus.NEEDS_REVIEW,
                          review_reason=ReviewReason.APPROVAL, scheduled_at=utcnow() + timedelta(days=2)))
        session.add_all(posts)
        session.flush()
        return [p.id for p in posts]


def test_turning_autonomous_off_asks_then_cancels_the_scheduled_posts(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    ids = _schedule(portal_app, user, 3)
    response = _save(user_client, enable_autonomous_mode=None)
    assert response.status_code == 302 and response.headers["Location"].endswith("/settings/scheduled-posts")
    with portal_db(portal_app) as session:  # generation stops at once: the fan-out reads this flag
        assert not session.scalar(select(UserSettings.enable_autonomous_mode).where(UserSettings.user_id == user.id))
    page = user_client.get("/settings/scheduled-posts").get_data(as_text=True)
    assert "<strong>4</strong>" in page
    user_client.post("/settings/scheduled-posts",
                     data={"choice": "cancel", "csrf_token": csrf_token(user_client, "/settings/scheduled-posts")})
    with portal_db(portal_app) as session:
        statuses = set(session.scalars(select(Post.status).where(Post.id.in_(ids))))
        assert statuses == {PostStatus.CANCELLED}
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "post.cancelled")).all()
        assert len(audit) == 4 and {a.actor for a in audit} == {f"user:{user.id}"}


def test_keeping_the_scheduled_posts_leaves_them_alone(
        user_client: FlaskClient, portal_app: Flask, user: TestUser) -> None:
    ids = _schedule(portal_app, user, 2)
    _save(user_client, enable_autonomous_mode=None)
    user_client.post("/settings/scheduled-posts",
                     data={"choice": "keep", "csrf_token": csrf_token(user_client, "/settings/scheduled-posts")})
    with portal_db(portal_app) as session:
        assert PostStatus.CANCELLED not in set(session.scalars(select(Post.status).where(Post.id.in_(ids))))
