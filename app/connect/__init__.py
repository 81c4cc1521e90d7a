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

from app.connect.errors import ConnectError, ConnectFailure

__all__ = ["ConnectError", "ConnectFailure"]
