"""Passwordless portal sign-in: one-time links and server-side sessions.

A sign-in link is ``PORTAL_BASE_URL/signin/<token>`` where the token is a random value signed
with ``SECRET_KEY`` (itsdangerous, salted for this use): an altered or forged token is refused
before any lookup, and its timestamp bounds it to :data:`LINK_LIFETIME` even if a row outlived
it. The database holds only the SHA-256 of the random part, and ``used_at`` is set by one
conditional UPDATE, so a link signs in once however many times it is clicked.

A session is a row of :class:`app.models.UserSession` keyed by the SHA-256 of a second random
token kept in the browser's (signed) cookie. Deleting the row ends the session whatever the
cookie says: sign-out, "sign out everywhere", a disabled user, or its expiry.

The CLI (``autopilot users invite``), the admin's "invite" action and the portal's sign-in
page all make links here, so a link means the same wherever it came from.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.audit import record
from app.config import Settings
from app.errors import AutopilotError, FieldError, ValidationError
from app.intents import Intent
from app.jobs.spec import Step, Tick
from app.models import SignInLink, User, UserSession, UserSettings
from app.validation import validate_email

log = logging.getLogger(__name__)

#: How long a sign-in link can be used after it was made.
LINK_LIFETIME = timedelta(minutes=15)
#: The itsdangerous salt: a token signed for another purpose never reads as a sign-in link.
LINK_SALT = "autopilot.portal.sign-in-link"
#: Characters of the User-Agent kept on a session row.
MAX_USER_AGENT = 200

__all__ = [
    "LINK_LIFETIME", "LinkRefused", "NewSession", "consume_link", "create_link", "disable_user",
    "end_all_sessions", "end_session", "hash_token", "link_url", "open_session", "session_user",
]


class LinkRefused(AutopilotError):
    """A sign-in link that cannot sign anyone in (altered, expired, used, or its user disabled).

    The message is safe to show: it never says whether an email has an account.
    """


def hash_token(token: str) -> str:
    """The stored form of a link's or session's random token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=LINK_SALT)


def link_url(settings: Settings, signed_token: str) -> str:
    """The full link a user opens, under ``PORTAL_BASE_URL``."""
    return f"{settings.portal_base_url}/signin/{signed_token}"


def create_link(session: Session, settings: Settings, email: str, *, now: datetime, created_by: str,
                allow_new_user: bool = False) -> str | None:
    """Make a one-time sign-in link for ``email``; the signed token, or None when nobody may use it.

    None when the email has no user (unless ``allow_new_user``: open sign-up, the user is
    created when the link is used) or the user is disabled. Callers that answer the public
    (the portal's sign-in page) must answer the same in both cases.
    """
    clean = validate_email(email)
    user = session.scalar(select(User).where(User.email == clean))
    if user is None and not allow_new_user:
        return None
    if user is not None and user.disabled:
        return None
    raw = secrets.token_urlsafe(32)
    session.add(SignInLink(token_hash=hash_token(raw), user_id=user.id if user else None, email=clean,
                           created_at=now, expires_at=now + LINK_LIFETIME, created_by=created_by))
    record(session, "user.sign_in_link_created", user_id=user.id if user else None, actor=created_by,
           details={"email": clean} if user is None else {})
    return _serializer(settings.secret_key).dumps(raw)


def consume_link(session: Session, settings: Settings, signed_token: str, *, now: datetime) -> User:
    """Use a link once: the user it signs in (created for an open sign-up link), or LinkRefused."""
    try:
        raw = _serializer(settings.secret_key).loads(signed_token, max_age=int(LINK_LIFETIME.total_seconds()))
    except BadSignature:
        # SignatureExpired is a BadSignature: an old link and a forged one read the same.
        raise LinkRefused("This sign-in link is not valid or has expired: ask for a new one.") from None
    if not isinstance(raw, str):
        raise LinkRefused("This sign-in link is not valid: ask for a new one.")
    link_id = session.scalar(
        update(SignInLink)
        .where(SignInLink.token_hash == hash_token(raw), SignInLink.used_at.is_(None),
               SignInLink.expires_at > now)
        .values(used_at=now)
        .returning(SignInLink.id)
    )
    if link_id is None:
        raise LinkRefused("This sign-in link was already used or has expired: ask for a new one.")
    link = session.get(SignInLink, link_id)
    assert link is not None
    user = session.get(User, link.user_id) if link.user_id is not None else \
        session.scalar(select(User).where(User.email == link.email))
    if user is None:
        # An open sign-up link: the account is made now, on first use, with default settings.
        user = User(email=link.email, settings=UserSettings())
        session.add(user)
        session.flush()
        record(session, "user.created", user_id=user.id, actor="portal:signup", details={"email": link.email})
    if user.disabled:
        raise LinkRefused("This account is disabled: ask the operator who invited you.")
    record(session, "user.signed_in", user_id=user.id, actor=f"user:{user.id}")
    return user


@dataclass(frozen=True)
class NewSession:
    """A session just opened: its row and the token for the browser's cookie (shown once)."""

    row: UserSession
    token: str


def open_session(session: Session, user: User, *, now: datetime, lifetime: timedelta,
                 user_agent: str | None = None) -> NewSession:
    """Open a server-side session for ``user``.

    Expired sessions and links (anyone's) are deleted on the way: a sign-in is rare next to page
    views, and both tables hold only live rows plus what expired since the last sign-in.
    """
    prune_expired(session, now)
    token = secrets.token_urlsafe(32)
    row = UserSession(user_id=user.id, token_hash=hash_token(token), created_at=now, expires_at=now + lifetime,
                      user_agent=(user_agent or "")[:MAX_USER_AGENT] or None)
    session.add(row)
    session.flush()
    return NewSession(row=row, token=token)


def prune_expired(session: Session, now: datetime) -> tuple[int, int]:
    """Delete expired portal sessions and sign-in links (anyone's): how many of each.

    Run by every sign-in and by the quarter-hour sweep (:data:`PRUNE_PORTAL_SIGNINS`), so a
    deployment where nobody signs in for a while does not keep dead rows (token hashes) around.
    """
    sessions_deleted: int = session.execute(delete(UserSession).where(UserSession.expires_at <= now)).rowcount  # type: ignore[attr-defined]
    links_deleted: int = session.execute(delete(SignInLink).where(SignInLink.expires_at <= now)).rowcount  # type: ignore[attr-defined]
    return sessions_deleted, links_deleted


def _prune(tick: Tick) -> Sequence[Intent]:
    with tick.runtime.session_factory.begin() as session:
        sessions_deleted, links_deleted = prune_expired(session, tick.now)
    if sessions_deleted or links_deleted:
        log.info("pruned %d expired portal sessions and %d expired sign-in links", sessions_deleted, links_deleted)
    return []


PRUNE_PORTAL_SIGNINS = Step(
    "prune_portal_signins",
    "Delete expired portal sessions and sign-in links (a sign-in deletes them too)",
    _prune)


def session_user(session: Session, token: str | None, *, now: datetime) -> tuple[User, UserSession] | None:
    """The user and session a cookie's token stands for, in one query; None if ended, expired or disabled."""
    if not token or not isinstance(token, str):
        return None
    found = session.execute(
        select(User, UserSession)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.token_hash == hash_token(token), UserSession.expires_at > now, User.disabled.is_(False))
    ).first()
    return (found[0], found[1]) if found is not None else None


def end_session(session: Session, session_id: int) -> None:
    """Sign one browser out (its cookie is worth nothing from now on)."""
    session.execute(delete(UserSession).where(UserSession.id == session_id))


def end_all_sessions(session: Session, user_id: int, *, actor: str) -> int:
    """Sign every browser of the user out; how many sessions were ended. Audited."""
    ended = session.execute(delete(UserSession).where(UserSession.user_id == user_id)).rowcount or 0  # type: ignore[attr-defined]
    record(session, "user.signed_out_everywhere", user_id=user_id, actor=actor, details={"sessions": ended})
    return ended


def disable_user(session: Session, email: str, *, disabled: bool = True, actor: str) -> User:
    """Disable (or re-enable) a user: a disabled user cannot sign in and is signed out at once."""
    user = session.scalar(select(User).where(User.email == validate_email(email)))
    if user is None:
        raise ValidationError([FieldError("email", email, "no user with this email")])
    if user.disabled != disabled:
        user.disabled = disabled
        record(session, "user.disabled" if disabled else "user.enabled", user_id=user.id, actor=actor)
    if disabled:
        session.execute(delete(UserSession).where(UserSession.user_id == user.id))
        # Unused links too: an invite printed before the disable must not let them back in.
        session.execute(delete(SignInLink).where(SignInLink.user_id == user.id, SignInLink.used_at.is_(None)))
    return user
