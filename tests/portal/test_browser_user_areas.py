"""The user's dashboard, a weekly report, notifications and both data actions in a real browser.

A live portal (werkzeug's server in a thread) on the run's PostgreSQL with a 90-day history in
New York on X, LinkedIn, Bluesky and Mastodon (the last two without impressions: their figures
are interactions), driven by Debian's chromium at 1366 px and at 375 px: the charts are drawn (Chart.js
under the page's CSP, nothing refused), nothing scrolls sideways, the apply button, marking read,
the download and the deletion work. Screenshots go to ``$ADMIN_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from app.clock import utcnow
from app.config import Settings
from app.crypto import generate_key
from app.db import make_session_factory
from app.models import PlatformAccount, User
from app.notifications import notify
from app.signin import create_link
from app.statuses import AccountStatus
from app.workflows.report import weekly_report_for_user
from portal import create_app
from portal.ext import EXTENSION_KEY
from tests.browser import csp_violations, horizontal_overflow, shoot, watch_console
from tests.factories import make_runtime, make_user
from tests.history import ZONE, seed_history
from tests.portal.conftest import follow_sign_in_link

EMAIL = "ada@example.com"
WIDTHS = (1366, 375)


@dataclass
class LivePortal:
    url: str
    settings: Settings
    sessions: sessionmaker[Session]
    user_id: int
    report_day: str


@pytest.fixture
def portal_server(pg_url: str, pg_engine: Engine) -> Iterator[LivePortal]:
    settings = Settings(database_url=pg_url, secret_key="browser-portal-secret", session_cookie_secure=False,
                        token_encryption_keys=(generate_key(),), portal_base_url="http://127.0.0.1")
    sessions = make_session_factory(pg_engine)
    from app.crypto import TokenVault

    vault = TokenVault.from_settings(settings)
    user_id = make_user(sessions, vault, EMAIL, connect=("twitter", "linkedin"), settings={
        "timezone": ZONE, "preferred_platforms": ["twitter", "linkedin"], "enable_autonomous_mode": True,
        "topics": ["python"], "posting_times": {"twitter": ["09:00", "17:00"], "linkedin": ["12:00"]}})
    now = utcnow()
    seed_history(sessions, user_id, now, seed=7, days=120, platforms=("twitter", "linkedin", "bluesky", "mastodon"))
    with sessions.begin() as session:
        session.execute(PlatformAccount.__table__.update().where(PlatformAccount.platform == "linkedin")
                        .values(status=AccountStatus.NEEDS_REAUTH))
        notify(session, user_id, "account_needs_reauth", "Reconnect your LinkedIn account",
               "LinkedIn refused the autopilot's access: reconnect it to keep posting there.", now=now)
        notify(session, user_id, "generation_failed", "Today's posts could not be generated",
               "The writer did not answer; the autopilot tries again tomorrow.", now=now)
    runtime = make_runtime(settings, sessions, vault, clock=lambda: now)
    week_end = (now - timedelta(days=now.weekday() + 1)).replace(hour=8, minute=0, second=0, microsecond=0)
    weekly_report_for_user(runtime, user_id, week_end - timedelta(days=7))
    entry = weekly_report_for_user(runtime, user_id, week_end)
    app = create_app(settings, {"TESTING": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LivePortal(f"http://127.0.0.1:{server.server_port}", settings, sessions, user_id,
                         entry.key.split(":", 1)[1])
    finally:
        server.shutdown()
        app.extensions[EXTENSION_KEY].engine.dispose()


def signed_in_page(browser: Any, live: LivePortal, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = watch_console(context.new_page())
    with live.sessions.begin() as session:
        token = create_link(session, live.settings, EMAIL, now=utcnow(), created_by="test")
    follow_sign_in_link(page, live.url, token)
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_dashboard_report_and_notifications(browser: Any, portal_server: LivePortal, screenshots: Path,
                                            width: int) -> None:
    live = portal_server
    page = signed_in_page(browser, live, width)
    try:
        for chart in ("impressions", "engagement", "interactions", "heatmap"):
            page.wait_for_selector(f"#chart-{chart}[data-drawn='1']")
            assert int(page.get_attribute(f"#chart-{chart}", "data-points") or 0) > 0
            assert page.locator(f"#chart-{chart}-table tbody tr").count() > 0
        assert page.inner_text("#figure-published .big").strip() not in ("", "0")
        assert page.inner_text("#figure-interactions .big").strip() not in ("", "0", "-")
        assert "%" in page.inner_text("#figure-interactions_per_post .change")
        # Bluesky and Mastodon: a series of their own in the interactions chart, none in the rate chart.
        assert {"Bluesky", "Mastodon"} <= set(page.eval_on_selector_all(
            "#chart-interactions-table thead th", "cells => cells.map(c => c.textContent)"))
        assert "Bluesky" not in page.inner_text("#chart-engagement-table thead")
        # Its four platforms' columns fit the table's box, even on a phone (no sideways scroll inside it).
        assert page.eval_on_selector("#chart-interactions-table", "t => t.scrollWidth <= t.clientWidth")
        assert page.locator("#top-interactions-posts tbody tr").count() == 3
        assert "not reported" in page.inner_text("#top-interactions-posts")
        assert "needs re-authorisation" in page.inner_text("#accounts")
        assert page.locator("#next-posts li").count() == 5
        assert horizontal_overflow(page) == 0
        # The heatmap's rows are local hours of New York (the seeded posting hours), not UTC ones.
        hours = set(page.eval_on_selector_all("#chart-heatmap-table tbody tr td:nth-child(2)",
                                              "cells => cells.map(c => c.textContent)"))
        assert hours and hours <= {"08", "09", "12", "17", "20"}
        shoot(page, screenshots, f"portal-dashboard-{width}")
        page.screenshot(path=str(screenshots / f"portal-dashboard-top-{width}.png"))
        page.locator("#heatmap-card").screenshot(path=str(screenshots / f"portal-heatmap-{width}.png"))
        page.locator("#interactions-card").screenshot(path=str(screenshots / f"portal-interactions-{width}.png"))
        page.locator("#figures-title + .figures").screenshot(path=str(screenshots / f"portal-figures-{width}.png"))
        page.click("#figure-published")
        assert page.locator("#counted-posts tbody tr").count() > 0

        page.goto(f"{live.url}/reports/{live.report_day}")
        assert page.inner_text("#report-summary").startswith("Week ")
        assert "report no impressions" in page.inner_text("#report-summary")
        assert page.locator("#report-top-by-interactions tbody tr").count() > 0
        assert "not reported by Bluesky" in page.inner_text("#report-platforms")
        apply = page.locator("form[action$='/apply'] button")
        if apply.count():
            apply.first.click()
            assert "Applied:" in page.inner_text("main")
        assert horizontal_overflow(page) == 0
        shoot(page, screenshots, f"portal-report-{width}")
        page.locator("#report-platforms").screenshot(path=str(screenshots / f"portal-report-platforms-{width}.png"))

        page.goto(f"{live.url}/notifications/")
        assert page.inner_text("#unread-count") == "2"
        page.locator("#notifications li.unread button").first.click()
        assert page.inner_text("#unread-count") == "1"
        assert horizontal_overflow(page) == 0
        shoot(page, screenshots, f"portal-notifications-{width}")
        assert csp_violations(page) == []
    finally:
        page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_download_then_delete_my_account(browser: Any, portal_server: LivePortal, screenshots: Path,
                                         width: int) -> None:
    live = portal_server
    page = signed_in_page(browser, live, width)
    try:
        page.goto(f"{live.url}/data/")
        assert horizontal_overflow(page) == 0
        shoot(page, screenshots, f"portal-data-{width}")
        with page.expect_download() as download:
            page.click("#download")
        archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
        assert {"posts.json", "posts.csv", "accounts.json", "audit.csv"} <= set(archive.namelist())
        assert "access_token" not in archive.read("accounts.json").decode()

        page.fill("#confirm", "someone.else@example.com")
        page.click("#delete")
        assert "type your account's email address" in page.inner_text("#confirm-error")
        shoot(page, screenshots, f"portal-delete-refused-{width}")
        page.fill("#confirm", EMAIL)
        page.click("#delete")
        page.wait_for_url(f"{live.url}/signin")
        assert "Your account and your data are deleted" in page.inner_text("main")
        with live.sessions() as session:
            assert session.scalar(select(User).where(User.email == EMAIL)) is None
        assert csp_violations(page) == []
    finally:
        page.context.close()
