"""The reports archive (apply advice), notifications (unread, read, preferences) and the data page."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.clock import utcnow
from app.models import (
    AuditLog,
    MemoryEntry,
    Notification,
    NotificationPreferences,
    Post,
    PostStatus,
    User,
    UserSettings,
)
from app.notifications import notify
from tests.portal.conftest import TestUser, csrf_token, portal_db, signed_in

CHANGE = {"setting": "posting_time", "platform": "twitter", "current": "09:00", "proposed": "17:00",
          "sentence": "Move your X posting time from 09:00 to 17:00: posts at 17:00 had 5.0% engagement vs 2.0%"}


def add_report(app: Flask, user_id: int, day: str, summary: str) -> None:
    with portal_db(app) as session:
        session.add(MemoryEntry(user_id=user_id, kind="insight", key=f"weekly:{day}", content={
            "summary": summary, "recommendations": [CHANGE["sentence"], "Topics that worked: ORMs (5.0%)"],
            "changes": [CHANGE], "applied_advice": [], "top": [], "bottom": [], "by_platform": {}}))


def test_reports_newest_first_and_advice_applied_once_through_validation(
        portal_app: Flask, client: FlaskClient, make_user: Callable[..., TestUser]) -> None:
    ada, zed = make_user("ada@example.com"), make_user("zed@example.com")
    add_report(portal_app, ada.id, "2026-11-15", "older week")
    add_report(portal_app, ada.id, "2026-11-22", "newer week")
    add_report(portal_app, zed.id, "2026-11-29", "zed-secret week")
    signed_in(client, portal_app, ada)
    archive = client.get("/reports/").get_data(as_text=True)
    assert archive.index("newer week") < archive.index("older week") and "zed-secret" not in archive
    assert client.get("/reports/2026-11-29").status_code == 404
    page = client.get("/reports/2026-11-22").get_data(as_text=True)
    assert "Apply: post on X at 17:00 instead of 09:00" in page and page.count("<form") >= 2
    token = csrf_token(client, "/reports/2026-11-22")
    response = client.post("/reports/2026-11-22/apply", data={"csrf_token": token, "change": "0"})
    assert response.status_code == 302
    again = client.post("/reports/2026-11-22/apply", data={"csrf_token": token, "change": "0"}, follow_redirects=True)
    assert "applied already" in again.get_data(as_text=True)
    with portal_db(portal_app) as session:
        settings = session.scalars(select(UserSettings).where(UserSettings.user_id == ada.id)).one()
        assert settings.posting_times["twitter"] == ["17:00"]
        assert session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.user_id == ada.id, AuditLog.action == "advice.applied")) == 1


def test_notifications_unread_count_marking_read_and_preferences(
        portal_app: Flask, client: FlaskClient, user: TestUser) -> None:
    with portal_db(portal_app) as session:
        for i in range(3):
            notify(session, user.id, "generation_failed", f"Nothing generated {i}", "The writer failed.")
    signed_in(client, portal_app, user)
    page = client.get("/notifications/").get_data(as_text=True)
    assert 'id="unread-count" aria-label="3 unread">3<' in page
    token = csrf_token(client, "/notifications/")
    with portal_db(portal_app) as session:
        first = session.scalar(select(Notification.id).order_by(Notification.id).limit(1))
    client.post("/notifications/read", data={"csrf_token": token, "notification_id": str(first)})
    assert 'aria-label="2 unread"' in client.get("/notifications/").get_data(as_text=True)
    client.post("/notifications/read", data={"csrf_token": token})
    assert 'id="unread-count"' not in client.get("/notifications/").get_data(as_text=True)
    form = {f"email_{kind}": "digest" for kind in ("account_needs_reauth", "review_queue_growing",
                                                    "provider_paused", "generation_failed")}
    bad = client.post("/notifications/preferences", data={**form, "email_generation_failed": "hourly",
                                                          "csrf_token": token})
    assert bad.status_code == 400 and "expected one of now, digest, off" in bad.get_data(as_text=True)
    assert client.post("/notifications/preferences", data={**form, "csrf_token": token}).status_code == 302
    with portal_db(portal_app) as session:
        prefs = session.get(NotificationPreferences, user.id)
        assert prefs is not None and prefs.weekly_report_email is False
        assert set(prefs.email_by_kind.values()) == {"digest"}


def test_download_then_delete_the_account(portal_app: Flask, client: FlaskClient, user: TestUser) -> None:
    with portal_db(portal_app) as session:
        session.add(Post(user_id=user.id, platform="twitter", text="my words", status=PostStatus.SCHEDULED,
                         scheduled_at=utcnow()))
    signed_in(client, portal_app, user)
    token = csrf_token(client, "/data/")
    download = client.post("/data/download", data={"csrf_token": token})
    assert download.mimetype == "application/zip" and "attachment" in download.headers["Content-Disposition"]
    assert "my words" in zipfile.ZipFile(io.BytesIO(download.get_data())).read("posts.json").decode()
    wrong = client.post("/data/delete", data={"csrf_token": token, "confirm": "someone@example.com"})
    assert wrong.status_code == 400 and "type your account" in wrong.get_data(as_text=True)
    done = client.post("/data/delete", data={"csrf_token": token, "confirm": user.email.upper()})
    assert done.status_code == 302 and done.headers["Location"].endswith("/signin")
    assert client.get("/").status_code == 302  # signed out: the session went with the account
    with portal_db(portal_app) as session:
        assert session.get(User, user.id) is None
        assert session.scalar(select(func.count()).select_from(Post)) == 0
        assert {a for a in session.scalars(select(AuditLog.action))} >= {"data.exported", "account.deleted"}
