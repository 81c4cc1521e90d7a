"""Connecting accounts in headless Chromium: the user clicks Connect, lands on the platform's
(fake) consent page, presses its button and comes back connected; reconnects an account that
needs re-authorisation, cancels a consent, disconnects. Every page at 1366 and 375 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.clock import utcnow
from app.connect import callback_url
from app.crypto import generate_key
from app.models import AccountStatus, PlatformAccount
from app.signin import create_link
from app.users import create_user
from tests.browser import csp_violations, watch_console
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX
from tests.portal.conftest import OPTED_IN, LivePortal, both_widths, follow_sign_in_link

EMAIL = "grace@example.com"


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with FakeX(client_id="x-client", client_secret="x-secret") as fake:
        yield fake


@pytest.fixture
def fake_linkedin() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn(client_id="li-client", client_secret="li-secret") as fake:
        yield fake


@pytest.fixture
def portal_server_settings(fake_x: FakeX, fake_linkedin: FakeLinkedIn) -> dict[str, Any]:
    return {"token_encryption_keys": (generate_key(),),
            "x_client_id": "x-client", "x_client_secret": "x-secret", "x_api_base_url": fake_x.base_url,
            "x_authorize_url": fake_x.authorize_url, "linkedin_client_id": "li-client",
            "linkedin_client_secret": "li-secret", "linkedin_api_base_url": fake_linkedin.base_url,
            "linkedin_oauth_base_url": fake_linkedin.base_url}



def test_connect_x_and_linkedin_through_their_consent_pages(
        browser_context: Any, portal_server: LivePortal, fake_x: FakeX, fake_linkedin: FakeLinkedIn,
        screenshots: Path) -> None:
    # The operator registered the portal's redirect URIs with both platforms.
    fake_x.consent.redirect_uris.add(callback_url(portal_server.settings, "twitter"))
    fake_linkedin.consent.redirect_uris.add(callback_url(portal_server.settings, "linkedin"))
    with portal_server.sessions.begin() as session:
        create_user(session, EMAIL, OPTED_IN, name="Grace", actor="test")
        token = create_link(session, portal_server.settings, EMAIL, now=utcnow(), created_by="cli")
    page = watch_console(browser_context.new_page())

    # An invited user signs in with the link `autopilot users invite` printed.
    follow_sign_in_link(page, portal_server.url, token)
    page.click("nav >> text=Accounts")
    # X and LinkedIn offer Connect; Bluesky and Mastodon (switched off here) say so.
    assert page.locator("text=Not connected.").count() == 4
    both_widths(page, screenshots, "accounts-empty")

    # X: the consent page, Authorize, back connected.
    page.click("text=Connect X")
    assert page.url.startswith(fake_x.authorize_url)
    assert "@autopilot_test" in page.inner_text("body")
    both_widths(page, screenshots, "x-consent")
    page.click("button:has-text('Authorize app')")
    page.wait_for_url(f"{portal_server.url}/accounts")
    assert "Your X account @autopilot_test is connected." in page.inner_text(".flash")

    # LinkedIn: the same through its own page and its Allow button.
    page.click("text=Connect LinkedIn")
    page.click("button:has-text('Allow')")
    page.wait_for_url(f"{portal_server.url}/accounts")
    assert "Ada Lovelace is connected" in page.inner_text(".flash")
    main = page.inner_text("main")
    assert main.count("connected") >= 2 and "Access expires on" in main
    both_widths(page, screenshots, "accounts-connected")

    # X stops accepting the token: the page says so, and Reconnect clears it.
    with portal_server.sessions.begin() as session:
        x = session.scalars(select(PlatformAccount).where(PlatformAccount.platform == "twitter")).one()
        x.status = AccountStatus.NEEDS_REAUTH
    page.reload()
    assert "needs re-authorisation" in page.inner_text("#account-twitter")
    both_widths(page, screenshots, "accounts-reauth")
    page.click("#account-twitter >> text=Reconnect X")
    page.click("button:has-text('Authorize app')")
    page.wait_for_url(f"{portal_server.url}/accounts")
    assert "reconnected" in page.inner_text(".flash")
    assert "needs re-authorisation" not in page.inner_text("#account-twitter")

    # A cancelled consent: a page that says so, and nothing changed.
    page.click("#account-linkedin >> text=Reconnect LinkedIn")
    page.click("button:has-text('Cancel')")
    assert "You cancelled on LinkedIn's consent screen" in page.inner_text("main")
    both_widths(page, screenshots, "connect-cancelled")
    page.click("text=Back to your accounts")

    # Disconnect X: revoked at X, tokens deleted.
    page.click("button:has-text('Disconnect X')")
    assert "Your X account @autopilot_test is disconnected" in page.inner_text(".flash")
    both_widths(page, screenshots, "accounts-disconnected")
    assert len(fake_x.revoked) == 2
    with portal_server.sessions() as session:
        assert [a.platform for a in session.scalars(select(PlatformAccount))] == ["linkedin"]
    assert csp_violations(page) == []
