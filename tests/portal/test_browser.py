"""The portal in headless Chromium, as a user uses it, served as the Procfile's web line serves it.

Sign in by the emailed link, change settings (and turn autonomous mode off), approve a post;
every page is saved at 1366 px and at 375 px (a phone) and checked for sideways scrolling.
The admin is checked under ``/admin`` of the same server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.clock import utcnow
from app.models import Post, PostStatus, ReviewReason, UserSettings
from app.users import create_user
from tests.browser import (
    BROWSER_OPERATOR,
    BROWSER_PASSWORD,
    csp_violations,
    shoot,
    watch_console,
)
from tests.portal.conftest import OPTED_IN, LivePortal, both_widths

EMAIL = "ada@example.com"




def _seed(portal_server: LivePortal) -> int:
    with portal_server.sessions() as session, session.begin():
        user = create_user(session, EMAIL, {**OPTED_IN, "require_approval": True}, name="Ada", actor="test")
        soon = utcnow() + timedelta(days=1)
        session.add_all([
            Post(user_id=user.id, platform="twitter", text="Scheduled: Python 3.14 is out, here is what changed.",
                 status=PostStatus.SCHEDULED, scheduled_at=soon),
            Post(user_id=user.id, platform="twitter", text="Published: our take on typed Python.",
                 status=PostStatus.PUBLISHED, scheduled_at=soon - timedelta(days=3),
                 published_at=soon - timedelta(days=3), external_id="1790000000000000001"),
        ])
        waiting = Post(user_id=user.id, platform="twitter", status=PostStatus.NEEDS_REVIEW,
                       review_reason=ReviewReason.APPROVAL, scheduled_at=soon + timedelta(hours=3),
                       text="Waiting: five small habits that make Flask apps easier to test. #python #flask")
        session.add(waiting)
        session.flush()
        return waiting.id


def _sign_in(page: Any, portal_server: LivePortal, screenshots: Path) -> None:
    page.goto(f"{portal_server.url}/posts/")
    assert "/signin" in page.url
    both_widths(page, screenshots, "signin")
    page.fill("input[name=email]", EMAIL)
    page.click("button[type=submit]")
    assert "sign-in link is on its way" in page.inner_text("main")
    for _ in range(100):
        if portal_server.mails.mails:
            break
        page.wait_for_timeout(50)
    body = portal_server.mails.mails[-1].message.get_payload(decode=True).decode()
    link = next(line for line in body.splitlines() if line.startswith(portal_server.url + "/signin/"))
    page.goto(link)
    both_widths(page, screenshots, "signin-link")
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal_server.url}/")
    assert EMAIL in page.inner_text("header")
    both_widths(page, screenshots, "home")


def test_sign_in_by_link_change_settings_and_approve_a_post(
        browser_context: Any, portal_server: LivePortal, screenshots: Path) -> None:
    waiting_id = _seed(portal_server)
    page = watch_console(browser_context.new_page())
    _sign_in(page, portal_server, screenshots)

    # Approve the post waiting for the user.
    with page.expect_navigation():
        page.click("nav >> text=Posts")
    both_widths(page, screenshots, "posts")
    assert "View on X" in page.inner_text("main")
    with page.expect_navigation():
        page.click("text=Waiting: five small habits")
    both_widths(page, screenshots, "post")
    page.get_by_role("button", name="Approve", exact=True).click()
    assert "Approved" in page.inner_text(".flash")
    with portal_server.sessions() as session:
        assert session.get(Post, waiting_id).status == PostStatus.SCHEDULED

    # Settings: a refused value is explained, then a good save; then autonomous mode off.
    page.click("nav >> text=Settings")
    page.fill("input[name=timezone]", "Mars/Olympus")
    page.click("button:has-text('Save settings')")
    assert "unknown IANA time zone" in page.inner_text("main")
    both_widths(page, screenshots, "settings-refused")
    page.fill("input[name=timezone]", "America/New_York")
    page.fill("textarea[name=topics]", "python\nweb frameworks")
    page.click("button:has-text('Save settings')")
    assert "Settings saved." in page.inner_text(".flash")
    both_widths(page, screenshots, "settings")
    page.uncheck("input[name=enable_autonomous_mode]")
    page.click("button:has-text('Save settings')")
    assert "/settings/scheduled-posts" in page.url
    both_widths(page, screenshots, "autonomous-off")
    page.click("button:has-text('Cancel them')")
    assert "cancelled" in page.inner_text(".flash")
    with portal_server.sessions() as session:
        settings = session.scalars(select(UserSettings)).one()
        assert settings.timezone == "America/New_York" and not settings.enable_autonomous_mode
        assert settings.topics == ["python", "web frameworks"]
        assert session.get(Post, waiting_id).status == PostStatus.CANCELLED
    assert csp_violations(page) == []


def test_the_admin_is_served_under_admin_by_the_same_server(
        browser_context: Any, portal_server: LivePortal, screenshots: Path) -> None:
    page = browser_context.new_page()
    page.goto(f"{portal_server.url}/admin/")
    assert "/admin/login" in page.url
    page.fill("input[name=username]", BROWSER_OPERATOR)
    page.fill("input[name=password]", BROWSER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal_server.url}/admin/")
    # The admin's stylesheet arrived from under /admin (Bootstrap's button colour).
    assert "Dashboard" in page.inner_text("body")
    shoot(page, screenshots, "portal-web-admin-dashboard")
    cookies = {c["name"]: c for c in browser_context.cookies()}
    assert cookies["autopilot_admin"]["path"] == "/admin"
