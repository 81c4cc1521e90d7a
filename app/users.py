"""Creating and changing users, their settings and their platform accounts.

The CLI and the admin both call these, so validation and audit happen in one place.
Every function validates first and writes nothing when validation fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import record
from app.crypto import TokenVault
from app.errors import FieldError, NotFound, ValidationError
from app.models import AccountStatus, PlatformAccount, User, UserSettings
from app.platforms import KNOWN_PLATFORMS
from app.providers.base import TokenSet
from app.validation import settings_of, validate_email, validate_settings


def opted_in_user_ids(session: Session) -> list[int]:
    """Every user with autonomous mode on: one query, whatever their number."""
    return list(session.scalars(
        select(UserSettings.user_id).where(UserSettings.enable_autonomous_mode.is_(True)).order_by(UserSettings.user_id)
    ))


def get_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user with email {email!r}")
    return user


def create_user(
    session: Session, email: str, settings: Mapping[str, Any], *, name: str | None = None, actor: str = "cli"
) -> User:
    """Create a user with validated settings; refuses an email already taken."""
    clean_email = validate_email(email)
    clean = validate_settings(settings)
    if session.scalar(select(User.id).where(User.email == clean_email)) is not None:
        raise ValidationError([FieldError("email", email, "a user with this email already exists")])
    user = User(email=clean_email, name=name, settings=UserSettings(**clean.as_dict()))
    session.add(user)
    session.flush()
    record(session, "user.created", user_id=user.id, actor=actor, details=clean.as_dict())
    return user


class _Keep:
    """The type of :data:`KEEP_NAME`."""

    def __repr__(self) -> str:
        return "KEEP_NAME"


#: ``update_user(..., name=KEEP_NAME)`` leaves the name alone; ``name=None`` clears it.
KEEP_NAME: Any = _Keep()


def update_user(
    session: Session, email: str, changes: Mapping[str, Any], *, name: str | None | _Keep = KEEP_NAME,
    actor: str = "cli",
) -> User:
    """Apply ``changes`` over the current settings; the merged result is validated whole.

    Only what really changes is applied and audited: the ``user.updated`` row lists each
    changed setting with its new value, and ``name`` as ``{"from": old, "to": new}`` when the
    user was renamed (``None`` clears the name). A save that changes nothing writes no row.
    """
    user = get_user(session, email)
    current = settings_of(user.settings)
    clean = validate_settings({**current, **changes})
    changed = {key: value for key, value in clean.as_dict().items() if current[key] != value}
    for key, value in changed.items():
        setattr(user.settings, key, value)
    details: dict[str, Any] = dict(changed)
    if not isinstance(name, _Keep):
        new_name = (name or "").strip() or None
        if new_name != user.name:
            details["name"] = {"from": user.name, "to": new_name}
            user.name = new_name
    if details:
        record(session, "user.updated", user_id=user.id, actor=actor, details=details)
    return user


def set_account_status(session: Session, account: PlatformAccount, status: str, *, actor: str = "cli") -> bool:
    """Set an account's status; audited with the old and new status. False if unchanged."""
    if status not in set(AccountStatus):
        raise ValidationError([FieldError("status", status, f"known: {', '.join(AccountStatus)}")])
    old, new = account.status, AccountStatus(status)
    if old == new:
        return False
    account.status = new
    record(session, "account.status_changed", user_id=account.user_id, actor=actor,
           details={"platform": account.platform, "from": old, "to": new})
    return True


def connect_account(
    session: Session,
    vault: TokenVault,
    email: str,
    platform: str,
    tokens: TokenSet,
    *,
    handle: str | None = None,
    external_id: str | None = None,
    service_url: str | None = None,
    now: datetime | None = None,
    actor: str = "cli",
) -> PlatformAccount:
    """Store (or replace) a user's account on ``platform`` with encrypted tokens."""
    if platform not in KNOWN_PLATFORMS:
        raise ValidationError(
            [FieldError("platform", platform, f"unknown platform; known: {', '.join(KNOWN_PLATFORMS)}")]
        )
    if not tokens.access_token.strip():
        raise ValidationError([FieldError("access_token", "", "must not be empty")])
    if tokens.expires_at is not None and now is not None and tokens.expires_at <= now and not tokens.refresh_token:
        raise ValidationError(
            [FieldError("expires_at", tokens.expires_at.isoformat(), "already expired and no refresh token to renew it")]
        )
    user = get_user(session, email)
    account = session.scalar(
        select(PlatformAccount).where(PlatformAccount.user_id == user.id, PlatformAccount.platform == platform)
    )
    if account is None:
        account = PlatformAccount(user_id=user.id, platform=platform)
        session.add(account)
    vault.store_tokens(account, tokens)
    account.handle = handle or account.handle
    account.external_id = external_id or account.external_id
    account.service_url = service_url or account.service_url
    account.status = AccountStatus.ACTIVE
    account.reauth_notified_at = None
    session.flush()
    record(session, "account.connected", user_id=user.id, actor=actor,
           details={"platform": platform, "handle": account.handle})
    return account
