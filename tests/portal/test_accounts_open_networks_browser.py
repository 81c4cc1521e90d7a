"""In headless Chromium: connect a Bluesky account with a handle and an app password (the fake
PDS) and a Mastodon account through its instance's consent page (the fake instance), turn on
autonomous mode for both on the settings page, and see the posts the daily generation schedules
for each account on the posts page. The portal has no "new post" form: scheduling is the
autopilot's, from the user's settings. Every page at 1366 and 375 px."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.clock import utcnow
from app.crypto import TokenVault, generate_key
from app.models import PlatformAccount, Post, PostStatus
from app.platforms import get_platform
from app.providers.registry import build_providers
from app.runtime import Runtime
from app.signin import create_link
from app.users import create_user
from app.workflows.generation import fan_out_generation, generate_for_user
from tests.browser import csp_violations, watch_console
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.portal.conftest import OPTED_IN, LivePortal, both_widths, follow_sign_in_link

EMAIL = "katherine@example.com"
APP_PASSWORD = "kjoh-nson-1918-2020"


@pytest.fixture
def fake_bluesky() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        fake.add_account("katherine.example.com", APP_PASSWORD)
        yield fake


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        yield fake


@pytest.fixture
def portal_server_settings(fake_bluesky: FakeBluesky) -> dict[str, Any]:
    switches = {name: True for key in ("bluesky", "mastodon") for name in get_platform(key).switch_settings}
    return {"token_encryption_keys": (generate_key(),), "bluesky_pds_url": fake_bluesky.base_url, **switches}


def test_connect_bluesky_and_mastodon_then_posts_are_scheduled_for_each(
        browser_context: Any, portal_server: LivePortal, fake_bluesky: FakeBluesky, fake_mastodon: FakeMastodon,
        screenshots: Path) -> None:
    with portal_server.sessions.begin() as session:
        create_user(session, EMAIL, OPTED_IN, name="Katherine", actor="test")
        token = create_link(session, portal_server.settings, EMAIL, now=utcnow(), created_by="cli")
    page = watch_console(browser_context.new_page())
    follow_sign_in_link(page, portal_server.url, token)
    with page.expect_navigation():
        page.click("nav >> text=Accounts")
    both_widths(page, screenshots, "accounts-open-networks-empty")

    # Bluesky: a wrong app password is refused with a page that says so, nothing stored.
    page.fill("#handle-bluesky", "katherine.example.com")
    page.fill("#app-password-bluesky", "not-the-app-password")
    page.click("#account-bluesky >> button:has-text('Connect Bluesky')")
    assert "did not accept this handle and app password" in page.inner_text("main")
    assert "not-the-app-password" not in page.content()
    both_widths(page, screenshots, "bluesky-refused")
    page.click("text=Back to your accounts")
    # The right one: connected, and the app password is nowhere on the page.
    page.fill("#handle-bluesky", "@katherine.example.com")
    page.fill("#app-password-bluesky", APP_PASSWORD)
    page.click("#account-bluesky >> button:has-text('Connect Bluesky')")
    page.wait_for_url(f"{portal_server.url}/accounts")
    assert "Your Bluesky account @katherine.example.com is connected." in page.inner_text(".flash")
    assert APP_PASSWORD not in page.content()

    # Mastodon: the instance's domain, its consent page, Authorize, back connected.
    page.fill("#domain-mastodon", fake_mastodon.base_url)
    page.click("#account-mastodon >> button:has-text('Connect Mastodon')")
    # A link to the server (a form's answer may not redirect to another origin under the CSP).
    assert "Continue to 127.0.0.1" in page.inner_text("main")
    both_widths(page, screenshots, "mastodon-continue")
    page.click("#continue-consent")
    assert page.url.startswith(f"{fake_mastodon.base_url}/oauth/authorize?")
    assert "Authorization required" in page.inner_text("body")
    both_widths(page, screenshots, "mastodon-consent")
    page.click("button:has-text('Authorize')")
    page.wait_for_url(f"{portal_server.url}/accounts")
    assert "Your Mastodon account @ada@127.0.0.1" in page.inner_text(".flash")
    both_widths(page, screenshots, "accounts-open-networks-connected")
    with portal_server.sessions() as session:
        accounts = {a.platform: a for a in session.scalars(select(PlatformAccount))}
    assert set(accounts) == {"bluesky", "mastodon"}
    assert accounts["mastodon"].service_url == fake_mastodon.base_url

    # Autonomous mode on both, one posting time each, no approval: the settings page.
    page.click("nav >> text=Settings")
    page.uncheck("input[name=platform_twitter]")
    page.fill("#times_twitter", "")
    for key, at in (("bluesky", "10:15"), ("mastodon", "16:45")):
        page.check(f"input[name=platform_{key}]")
        page.fill(f"#times_{key}", at)
    page.uncheck("input[name=require_approval]")
    page.fill("#content_frequency", "14")
    page.select_option("#post_visibility", "unlisted")
    both_widths(page, screenshots, "settings-open-networks")
    page.click("button:has-text('Save settings')")
    assert "Settings saved." in page.inner_text(".flash")

    # The daily generation for tomorrow (the worker's job, run here in-process).
    runtime = Runtime(settings=portal_server.settings, session_factory=portal_server.sessions,
                      providers=build_providers(portal_server.settings, portal_server.sessions),
                      vault=TokenVault.from_settings(portal_server.settings))
    now = utcnow()
    slot = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    with portal_server.sessions.begin() as session:
        execution_ids = fan_out_generation(session, slot, now=now)
    assert len(execution_ids) == 1
    assert generate_for_user(runtime, execution_ids[0]).error is None
    with portal_server.sessions() as session:
        posts = session.scalars(select(Post).order_by(Post.scheduled_at)).all()
    assert {p.platform for p in posts} == {"bluesky", "mastodon"}
    assert all(p.status == PostStatus.SCHEDULED and p.scheduled_at > now for p in posts)

    page.click("nav >> text=Posts")
    main = page.inner_text("main")
    assert "Bluesky" in main and "Mastodon" in main
    both_widths(page, screenshots, "posts-open-networks-scheduled")

    # Disconnect both: Bluesky's session deleted, Mastodon's token revoked, their posts cancelled.
    page.click("nav >> text=Accounts")
    page.click("button:has-text('Disconnect Bluesky')")
    assert "Bluesky account @katherine.example.com is disconnected" in page.inner_text(".flash")
    page.click("button:has-text('Disconnect Mastodon')")
    assert "upcoming post(s) on Mastodon were cancelled" in page.inner_text(".flash")
    assert fake_bluesky.deleted_sessions == 1 and fake_mastodon.revoked_tokens == 1
    with portal_server.sessions() as session:
        assert session.scalars(select(PlatformAccount)).all() == []
    assert csp_violations(page) == []
