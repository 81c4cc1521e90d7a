"""Platform accounts: token refresh, re-authorisation, and warnings before a token expires.

X tokens are refreshed before a publish (:func:`refresh_tokens`) under a row lock, because X
rotates refresh tokens. An account the platform refuses is flagged ``needs_reauth`` and its
owner told once (:func:`flag_reauth`). LinkedIn access tokens live 60 days and most apps get
no refresh token, so the only way to keep posting is for the user to re-authorise in time:
the daily :data:`WARN_EXPIRING_ACCOUNTS` step warns a week ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.audit import record
from app.connect import accounts_page_url
from app.errors import AutopilotError
from app.intents import Intent
from app.jobs.spec import Step, Tick
from app.models import AccountStatus, PlatformAccount
from app.notifications import notify
from app.platforms import display_name
from app.providers.base import AccountCredentials, Publisher
from app.providers.errors import AuthError, OperatorProblem, PermanentError
from app.runtime import Runtime

#: How long before expiry the user is told to re-authorise.
DEFAULT_EXPIRY_NOTICE = timedelta(days=7)

NOTIFY_REAUTH = "account_needs_reauth"


class RefreshFailed(AutopilotError):
    """A token refresh failed for a reason other than refusal: nothing was published."""


def refresh_tokens(runtime: Runtime, publisher: Publisher, creds: AccountCredentials) -> AccountCredentials:
    """Exchange the refresh token and store the new tokens; return fresh credentials.

    The account row is locked for the exchange: platforms that rotate refresh tokens (X)
    refuse the old one once used, so two workers refreshing at once would lock the user out.
    A worker that finds the tokens already changed by another uses those instead.
    Raises AuthError if the platform refuses, :class:`RefreshFailed` on any other failure.
    """
    vault = runtime.vault
    with runtime.session_factory() as session, session.begin():
        account = session.scalar(
            select(PlatformAccount).where(PlatformAccount.id == creds.account_id).with_for_update())
        if account is None:
            raise AuthError("the account was disconnected")
        current = vault.credentials(account)
        if current.access_token != creds.access_token:
            return current
        try:
            tokens = publisher.refresh(current)
        except (AuthError, OperatorProblem):
            raise
        except PermanentError as exc:  # invalid_grant and friends: the grant itself is gone
            raise AuthError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - nothing was published; the caller retries
            raise RefreshFailed(f"token refresh failed: {type(exc).__name__}: {exc}") from exc
        vault.store_tokens(account, tokens)
        record(session, "account.token_refreshed", user_id=account.user_id,
               details={"platform": account.platform})
        return vault.credentials(account)


def flag_reauth(session: Session, account_id: int, user_id: int, platform: str, error: str,
                now: datetime, *, accounts_url: str | None = None) -> None:
    """Mark the account as needing re-authorisation; tell the user once until reconnected.

    ``accounts_url``: the portal's accounts page, where the notice sends the user to reconnect.
    """
    flipped = session.execute(
        update(PlatformAccount)
        .where(PlatformAccount.id == account_id, PlatformAccount.status == AccountStatus.ACTIVE)
        .values(status=AccountStatus.NEEDS_REAUTH)
        .execution_options(synchronize_session=False)
    ).rowcount == 1  # type: ignore[attr-defined]
    if flipped:
        record(session, "account.needs_reauth", user_id=user_id,
               details={"platform": platform, "error": error})
    first = session.execute(
        update(PlatformAccount)
        .where(PlatformAccount.id == account_id, PlatformAccount.status == AccountStatus.NEEDS_REAUTH,
               PlatformAccount.reauth_notified_at.is_(None))
        .values(reauth_notified_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1  # type: ignore[attr-defined]
    if first:
        name = display_name(platform)
        where = f" Reconnect it here: {accounts_url}" if accounts_url else ""
        notify(session, user_id, NOTIFY_REAUTH, f"Reconnect your {name} account",
               f"{name} refused the autopilot's access ({error}). Posts for {name} wait in the "
               f"review queue until you reconnect the account.{where}", severity="error", now=now)


def warn_expiring_accounts(session: Session, now: datetime, *,
                           notice: timedelta = DEFAULT_EXPIRY_NOTICE, accounts_url: str | None = None) -> list[int]:
    """Notify the owners of active accounts expiring within ``notice`` with no way to renew.

    One query for the accounts; one notification per account per notice period. Returns the
    ids of the accounts warned.
    """
    horizon = now + notice
    expiring = session.scalars(
        select(PlatformAccount).where(
            PlatformAccount.status == AccountStatus.ACTIVE,
            PlatformAccount.expires_at <= horizon,
            or_(PlatformAccount.refresh_token_encrypted.is_(None),
                PlatformAccount.refresh_expires_at <= horizon),
        ).order_by(PlatformAccount.id)
    ).all()
    warned = []
    for account in expiring:
        assert account.expires_at is not None
        name = display_name(account.platform)
        when = "has expired" if account.expires_at <= now else f"expires on {account.expires_at:%Y-%m-%d}"
        created = notify(
            session, account.user_id, f"account_expiring:{account.platform}",
            f"Reconnect your {name} account",
            f"Your {name} connection ({account.handle or 'no handle'}) {when}. Posts cannot be published "
            f"after that: reconnect the account to keep the autopilot posting"
            + (f" ({accounts_url})." if accounts_url else "."),
            dedupe_since=now - notice, now=now,
        )
        if created is not None:
            warned.append(account.id)
    return warned


def _warn_expiring(tick: Tick) -> Sequence[Intent]:
    with tick.runtime.session_factory() as session, session.begin():
        warn_expiring_accounts(session, tick.now, accounts_url=accounts_page_url(tick.runtime.settings))
    return []


WARN_EXPIRING_ACCOUNTS = Step(
    "warn_expiring_accounts",
    "Tell users a week ahead that an account token without a way to renew it will expire",
    _warn_expiring)
