"""The notices asking a user to reconnect link to the portal's accounts page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.config import Settings
from app.connect import accounts_page_url, callback_url
from app.models import Notification, PlatformAccount
from app.providers.base import TokenSet
from app.users import connect_account, create_user
from app.workflows.accounts import flag_reauth, warn_expiring_accounts


def test_the_urls_operators_register_and_users_are_sent_to():
    settings = Settings(portal_base_url="https://autopilot.example.com/app")
    assert callback_url(settings, "twitter") == "https://autopilot.example.com/app/connect/twitter/callback"
    assert accounts_page_url(settings) == "https://autopilot.example.com/app/accounts"


def test_reauth_and_expiry_notices_carry_the_accounts_page(sessions, vault, now):
    url = "https://autopilot.example.com/accounts"
    with sessions.begin() as session:
        user = create_user(session, "ada@example.com", {"timezone": "UTC"})
        x = connect_account(session, vault, "ada@example.com", "twitter", TokenSet("t", None, None))
        connect_account(session, vault, "ada@example.com", "linkedin",
                        TokenSet("t", None, now + timedelta(days=3)))
        flag_reauth(session, x.id, user.id, "twitter", "401 Unauthorized", now, accounts_url=url)
        warned = warn_expiring_accounts(session, now, accounts_url=url)
    with sessions() as session:
        bodies = list(session.scalars(select(Notification.body).order_by(Notification.id)))
        linkedin = session.scalars(select(PlatformAccount).where(PlatformAccount.platform == "linkedin")).one()
    assert warned == [linkedin.id]
    assert len(bodies) == 2 and all(url in body for body in bodies)
