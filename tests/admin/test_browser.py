"""The admin in headless Chromium against PostgreSQL, as an operator uses it.

Every page visited is saved as a screenshot (see tests/browser.py for where), and every list
page is checked for sideways scrolling on a 1366-px-wide window.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.clock import utcnow
from app.models import AuditLog, Post, PostStatus, User
from tests.admin.seed import MULTI_LINE_POST, Seeded, seed
from tests.browser import LiveAdmin, csp_violations, horizontal_overflow, login, shoot

#: Every list page of the admin, by endpoint.
LIST_ENDPOINTS = ["users", "accounts", "posts", "review", "executions", "jobs", "audit", "notifications", "reports"]


@pytest.fixture
def seeded(admin_server: LiveAdmin) -> Seeded:
    return seed(admin_server.sessions, utcnow())


def flashes(page: Any) -> str:
    return " ".join(page.locator(".alert").all_inner_texts())


def test_login_page_is_styled_and_refuses_a_wrong_password(
    browser_context: Any, admin_server: LiveAdmin, screenshots: Path
) -> None:
    page = browser_context.new_page()
    page.goto(f"{admin_server.url}/admin/users/")
    assert "/login" in page.url
    # Bootstrap's stylesheet is applied: the login button is a coloured block, not a grey default.
    assert page.locator("button[type=submit]").evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(239, 239, 239)"
    shoot(page, screenshots, "login")
    login(page, admin_server.url, password="not the password")
    assert "Wrong username or password." in flashes(page)
    assert page.input_value("input[name=username]") == "olivia"
    shoot(page, screenshots, "login-refused")


def test_every_list_and_details_page_renders_and_fits_1366_px(
    logged_in_page: Any, admin_server: LiveAdmin, seeded: Seeded, screenshots: Path
) -> None:
    page = logged_in_page
    page.goto(f"{admin_server.url}/admin/")
    assert page.locator("#review-queue-size").inner_text() == "3"
    assert page.locator("#accounts-reauth").inner_text() == "1"  # expired, no refresh token
    shoot(page, screenshots, "dashboard")
    # A dashboard figure opens the list it counts.
    page.click("#accounts-reauth-link")
    assert page.locator("table.model-list tbody tr").count() == 1
    assert "Grace Hopper" in page.locator("table.model-list").inner_text()
    page.goto(f"{admin_server.url}/admin/")
    page.click("#failed-executions-link")
    assert page.locator("table.model-list tbody tr").count() == 1
    page.goto(f"{admin_server.url}/admin/")
    today = dict(zip(page.locator("#posts-today a").all_inner_texts(),
                     page.locator("#posts-today td.count").all_inner_texts(), strict=True))
    assert today, "some seeded post is always scheduled today (UTC)"
    for status, count in today.items():
        page.goto(f"{admin_server.url}/admin/")
        page.click(f"#posts-today a:text-is('{status}')")
        assert page.locator("table.model-list tbody tr").count() == int(count), status

    overflow: dict[str, int] = {}
    for endpoint in LIST_ENDPOINTS:
        page.goto(f"{admin_server.url}/admin/{endpoint}/")
        rows = page.locator("table.model-list tbody tr")
        assert rows.count() > 0, f"{endpoint}: the seeded rows are listed"
        overflow[endpoint] = horizontal_overflow(page)
        shoot(page, screenshots, f"list-{endpoint}")
        details = page.locator("a[title='View Record']").first.get_attribute("href")
        page.goto(f"{admin_server.url}{details}")
        assert page.locator("table.table").count() > 0, f"{endpoint}: details page"
        assert "Record does not exist" not in flashes(page)
        shoot(page, screenshots, f"details-{endpoint}")
    assert overflow == dict.fromkeys(LIST_ENDPOINTS, 0), "list pages scroll sideways at 1366 px"
    assert csp_violations(page) == []

    page.goto(f"{admin_server.url}/admin/users/edit/?id={seeded.ada}")
    assert "Editing user ada@example.com" in page.locator(".edit-heading").inner_text()
    shoot(page, screenshots, "edit-user")
    page.goto(f"{admin_server.url}/admin/users/details/?id={seeded.ada}")
    assert "Europe/Paris" in page.locator("table.settings-table").inner_text()
    page.goto(f"{admin_server.url}/admin/reports/details/?id={seeded.report}")
    report = page.locator(".weekly-report").inner_text()
    assert "simulated" in report and "Top posts" in report and "Recommendations" in report
    page.goto(f"{admin_server.url}/admin/accounts/")
    assert "expired" in page.locator("table.model-list").inner_text()
    assert page.goto(f"{admin_server.url}/admin/posts/details/?id=abc").status == 404


def test_settings_are_saved_and_bad_values_are_all_reported(
    logged_in_page: Any, admin_server: LiveAdmin, seeded: Seeded, screenshots: Path
) -> None:
    page = logged_in_page
    edit = f"{admin_server.url}/admin/users/edit/?id={seeded.ada}"
    page.goto(edit)
    page.fill("input[name=timezone]", "Asia/Tokyo")
    page.fill("input[name=content_frequency]", "5")
    page.click("input[type=submit][value=Save]")
    assert "Record was successfully saved." in flashes(page)
    with admin_server.sessions() as s:
        user = s.get(User, seeded.ada)
        assert (user.settings.timezone, user.settings.content_frequency) == ("Asia/Tokyo", 5)

    page.goto(edit)
    page.fill("input[name=timezone]", "Mars/Olympus_Mons")
    page.fill("input[name=posting_times]", "twitter=25:00; linkedin=10:00")
    page.fill("input[name=preferred_platforms]", "twitter, , linkedin")
    page.click("input[type=submit][value=Save]")
    messages = flashes(page)
    shoot(page, screenshots, "edit-user-refused")
    assert "timezone:" in messages and "Mars/Olympus_Mons" in messages
    assert "preferred_platforms: has an empty entry" in messages
    # The operator's input is still there to be fixed.
    assert page.input_value("input[name=timezone]") == "Mars/Olympus_Mons"
    with admin_server.sessions() as s:
        assert s.get(User, seeded.ada).settings.timezone == "Asia/Tokyo"


def test_review_queue_approve_reschedule_multi_line_and_cancel(
    logged_in_page: Any, admin_server: LiveAdmin, seeded: Seeded, screenshots: Path
) -> None:
    page = logged_in_page
    queue = f"{admin_server.url}/admin/review/"

    def act(post_id: int, action: str) -> None:
        page.goto(queue)
        page.check(f"input.action-checkbox[value='{post_id}']")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("a.dropdown-toggle:has-text('With selected')")
        page.click(f"a.dropdown-item:text-is('{action}')")
        page.wait_for_load_state()

    act(seeded.review_approve, "Approve")
    assert f"Post {seeded.review_approve} approved." in flashes(page)
    act(seeded.review_cancel, "Cancel")
    assert f"Post {seeded.review_cancel} cancelled." in flashes(page)

    # Edit & reschedule the multi-line post, changing only its time, with "Save and Continue Editing".
    page.goto(f"{admin_server.url}/admin/review/edit/?id={seeded.review_reschedule}")
    assert "Reviewing post" in page.locator(".edit-heading").inner_text()
    shoot(page, screenshots, "review-edit")
    new_time = (utcnow() + timedelta(days=1)).replace(second=0, microsecond=0)
    page.fill("input[name=at]", new_time.strftime("%Y-%m-%dT%H:%M"))
    page.click("input[name=_continue_editing]")
    assert "Record does not exist" not in flashes(page)
    assert f"Post {seeded.review_reschedule} left the review queue" in flashes(page)
    shoot(page, screenshots, "review-saved")

    with admin_server.sessions() as s:
        posts = {p.id: p for p in s.scalars(select(Post))}
        rescheduled = posts[seeded.review_reschedule]
        assert rescheduled.text == MULTI_LINE_POST  # no carriage returns crept in
        assert (rescheduled.status, rescheduled.scheduled_at) == (PostStatus.SCHEDULED, new_time)
        assert posts[seeded.review_approve].status == PostStatus.SCHEDULED
        assert posts[seeded.review_cancel].status == PostStatus.CANCELLED
        audit = s.scalars(select(AuditLog).where(AuditLog.post_id == seeded.review_reschedule,
                                                 AuditLog.action == "post.approved")).one()
        assert audit.details["edited"] is False
        assert audit.actor == "operator:olivia"
    page.goto(queue)
    assert page.locator("input.action-checkbox").count() == 0  # the queue is empty
    assert csp_violations(page) == []


def test_a_copied_cookie_is_refused_after_logout(
    browser: Any, logged_in_page: Any, admin_server: LiveAdmin, screenshots: Path
) -> None:
    copied = logged_in_page.context.cookies()
    assert copied, "a session cookie was set"
    logged_in_page.click("button:has-text('Log out')")
    assert "Logged out." in flashes(logged_in_page)
    other = browser.new_context()
    try:
        other.add_cookies(copied)
        thief = other.new_page()
        thief.goto(f"{admin_server.url}/admin/")
        assert re.search(r"/login\b", thief.url)
        shoot(thief, screenshots, "copied-cookie-after-logout")
    finally:
        other.close()
