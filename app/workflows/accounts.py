"""Account upkeep: warn a week before a token that cannot be renewed expires.

LinkedIn access tokens live 60 days and most apps get no refresh token, so the only way to
keep posting is for the user to re-authorise in time. X tokens are refreshed before each
publish and need no warning unless their refresh token is missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.models import AccountStatus, PlatformAccount
from app.notifications import notify

#: How long before expiry the user is told to re-authorise.
DEFAULT_EXPIRY_NOTICE = timedelta(days=7)


def warn_expiring_accounts(session: Session, now: datetime, *,
                           notice: timedelta = DEFAULT_EXPIRY_NOTICE) -> list[int]:
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
        name = {"linkedin": "LinkedIn", "twitter": "X"}.get(account.platform, account.platform)
        when = "has expired" if account.expires_at <= now else f"expires on {account.expires_at:%Y-%m-%d}"
        created = notify(
            session, account.user_id, f"account_expiring:{account.platform}",
            f"Reconnect your {name} account",
            f"Your {name} connection ({account.handle or 'no handle'}) {when}. Posts cannot be published "
            f"after that: reconnect the account to keep the autopilot posting.",
            dedupe_since=now - notice, now=now,
        )
        if created is not None:
            warned.append(account.id)
    return warned
