"""Ending an account's access at its platform: the one path a disconnect and an account deletion take.

The registry says whether and how (:mod:`app.platforms`): ``revokes_tokens`` whether the
platform offers apps a revocation at all (LinkedIn does not: the member removes the app in
their settings). A platform connected through its own consent screen (``connector_factory``,
X) revokes through its OAuth connector; a platform whose users live on their own servers
(``connect_with``) ends the session or revokes the token there
(:func:`app.connect.open_networks.revoke`: Bluesky's ``deleteSession``, Mastodon's
``/oauth/revoke``). No transaction is held across the call: the caller reads the account in
a session of its own that is closed by then.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.connect import open_networks
from app.connect.clients import OAuthCallFailed, connector_for
from app.connect.errors import ConnectError
from app.connect.flows import FlowRuntime
from app.errors import InvalidValue, TokenDecryptionError
from app.models import PlatformAccount
from app.platforms import PLATFORMS
from app.providers.errors import ProviderError

__all__ = ["Revocation", "revoke_account"]


@dataclass(frozen=True)
class Revocation:
    """What the platform said when asked to end an account's access."""

    #: True: the platform confirmed; False: not revoked, the token may still work (``error``
    #: says why: refused, unreachable, or it could not be asked from this server); None: the
    #: platform offers apps no revocation.
    revoked: bool | None
    error: str | None = None


def revoke_account(runtime: FlowRuntime, account: PlatformAccount) -> Revocation:
    """Revoke ``account``'s tokens at its platform, as its registry entry says; never raises.

    ``account`` may be detached (read in a session since closed): only its columns are read.
    Whatever the answer, the caller deletes the tokens: the user asked for them to go.
    """
    entry = PLATFORMS.get(account.platform)
    if entry is None:
        return Revocation(False, f"{account.platform!r} is not a platform this server knows")
    if not entry.revokes_tokens:
        return Revocation(None)
    connector = None
    if entry.connector_factory is not None:
        connector = connector_for(runtime.settings, account.platform)
        if connector is None:
            return Revocation(False, f"{entry.display_name} is not set up on this server: "
                                     "the token could not be revoked")
    elif entry.connect_with is None:
        return Revocation(False, f"{entry.display_name} accounts have no way to revoke here")
    try:
        credentials = runtime.vault.credentials(account)
        if connector is not None:
            connector.revoke(credentials.access_token, credentials.refresh_token)
        else:
            open_networks.revoke(runtime, credentials)
    except ConnectError as exc:
        return Revocation(False, exc.message)
    except (OAuthCallFailed, ProviderError, TokenDecryptionError, InvalidValue) as exc:
        # A refusal, an unreachable server, or a token (or client secret) under a key since
        # rotated away: nothing more to do here.
        return Revocation(False, str(exc))
    return Revocation(True)
