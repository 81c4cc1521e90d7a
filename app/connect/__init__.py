"""Connecting a user's platform accounts through the platforms' own OAuth consent screens.

A user cannot paste tokens: X and LinkedIn hand them only to an app that runs their OAuth 2.0
authorisation code flow. :mod:`app.connect.clients` speaks that flow to each platform (through
Authlib's httpx client: authorisation URL, PKCE, code exchange, revocation);
:mod:`app.connect.flows` keeps each consent under way server-side (``state`` single use, bound to
the browser's session, ten minutes; the PKCE verifier never leaves the server), stores the
resulting tokens encrypted, and disconnects. Plain functions over a Runtime: the portal's
blueprint only turns requests into calls and results into pages.
"""

from __future__ import annotations

from app.config import Settings
from app.connect.errors import ConnectError, ConnectFailure

__all__ = ["ACCOUNTS_PATH", "ConnectError", "ConnectFailure", "accounts_page_url", "callback_url"]

#: The portal's accounts page (connect, reconnect, disconnect), below ``PORTAL_BASE_URL``.
ACCOUNTS_PATH = "/accounts"


def accounts_page_url(settings: Settings) -> str:
    """Where a user reconnects an account: the link in "reconnect your account" notifications."""
    return settings.portal_base_url + ACCOUNTS_PATH


def callback_url(settings: Settings, platform: str) -> str:
    """The redirect URI operators register with the platform: ``PORTAL_BASE_URL +
    /connect/<platform>/callback``."""
    return f"{settings.portal_base_url}/connect/{platform}/callback"
