"""Why connecting an account failed, in words a user can act on.

Every failure of the consent flow is one :class:`ConnectError` whose ``failure`` says which
(the portal shows ``message``, tests check ``failure``); nothing is stored when one is raised.
"""

from __future__ import annotations

from enum import StrEnum

from app.errors import AutopilotError


class ConnectFailure(StrEnum):
    """The ways a consent can fail."""

    NOT_CONFIGURED = "not_configured"  # no client id/secret for the platform
    DENIED = "denied"  # the user pressed Cancel on the platform's consent screen
    REFUSED = "refused"  # the platform answered another error instead of a code
    BAD_STATE = "bad_state"  # no state, or one this browser and user did not start
    REUSED_STATE = "reused_state"  # the answer to a consent already finished
    EXPIRED = "expired"  # the consent started more than the flow's lifetime ago
    NO_CODE = "no_code"  # neither a code nor an error came back
    EXCHANGE_FAILED = "exchange_failed"  # the platform refused the code (reused, expired, PKCE)
    TAKEN = "taken"  # the platform account is connected to another user
    REVOKE_FAILED = "revoke_failed"  # the platform did not confirm a revocation
    BAD_INPUT = "bad_input"  # an empty handle or app password, a server domain that is not one
    UNREACHABLE = "unreachable"  # the user's server did not answer, or not as the platform does


class ConnectError(AutopilotError):
    """A consent that could not be completed; ``message`` is for the user."""

    def __init__(self, failure: ConnectFailure, message: str) -> None:
        self.failure = failure
        self.message = message
        super().__init__(f"{failure}: {message}")
