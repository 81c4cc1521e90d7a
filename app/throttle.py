"""Login throttling: per account and per client address, with a temporary lockout.

Shared by the admin (failed operator logins) and the users' portal (sign-in link requests,
every one counted: a link request has no "wrong password" to wait for). Each app uses its own
key prefixes, so an operator's lockout never locks a user out, nor the reverse.

Counts live in the database (:class:`app.models.LoginThrottle`), not in Redis or in process
memory: the admin runs without Redis on a laptop and as several gunicorn workers in
production, and a lockout must hold across workers and restarts. Each key is one row, updated
under a row lock, so concurrent guesses cannot slip past the limit.

A failure inside the window increments the key's count; reaching the limit locks the key
until ``lockout`` has passed. While a key is locked, logins for it are refused without even
checking the password (so guessing costs nothing but also learns nothing). A successful login
clears the account's count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import LoginThrottle

log = logging.getLogger(__name__)

#: Failed logins of one account within the window before it is locked.
DEFAULT_ACCOUNT_FAILURES = 5
#: Failed logins from one client address (any account) within the window before it is locked.
DEFAULT_ADDRESS_FAILURES = 20
#: The window over which failures are counted, in seconds.
DEFAULT_WINDOW_SECONDS = 15 * 60
#: How long a locked account or address stays locked, in seconds.
DEFAULT_LOCKOUT_SECONDS = 15 * 60
#: Rows of keys idle for longer than this (seconds) are deleted on the next failure.
DEFAULT_FORGET_AFTER_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ThrottleLimits:
    account_failures: int = DEFAULT_ACCOUNT_FAILURES
    address_failures: int = DEFAULT_ADDRESS_FAILURES
    window: timedelta = timedelta(seconds=DEFAULT_WINDOW_SECONDS)
    lockout: timedelta = timedelta(seconds=DEFAULT_LOCKOUT_SECONDS)


def account_key(username: str) -> str:
    return "account:" + (username or "").strip().lower()[:150]


def address_key(address: str | None) -> str:
    return "address:" + (address or "unknown")[:150]


def locked_until(session: Session, keys: list[str], now: datetime) -> datetime | None:
    """The latest end of a lockout among ``keys`` still running at ``now``, else None."""
    until = session.scalars(
        select(LoginThrottle.locked_until).where(LoginThrottle.key.in_(keys), LoginThrottle.locked_until > now)
    ).all()
    ends = [end for end in until if end is not None]  # the query excludes NULLs; mypy cannot tell
    return max(ends) if ends else None


def _locked_row(session: Session, key: str, now: datetime) -> LoginThrottle:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).one()


def register_failure(session: Session, key: str, limit: int, limits: ThrottleLimits, now: datetime) -> bool:
    """Count one failure of ``key``; True when this failure locked it."""
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_started_at < now - timedelta(seconds=DEFAULT_FORGET_AFTER_SECONDS),
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
        )
    )
    row = _locked_row(session, key, now)
    if row.window_started_at <= now - limits.window or (row.locked_until is not None and row.locked_until <= now):
        row.failures, row.window_started_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= limit and row.locked_until is None:
        row.locked_until = now + limits.lockout
        log.warning("login locked: %s after %d failures, until %s", key, row.failures, row.locked_until.isoformat())
        return True
    return False


def clear(session: Session, key: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
