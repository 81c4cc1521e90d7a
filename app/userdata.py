"""A user's own data: everything we hold about them as a download, and deleting their account.

:func:`export_user_data` writes a ZIP of JSON and CSV files: settings and notification
preferences, connected accounts (never their tokens), posts, their metric snapshots, weekly
reports, notifications and the audit rows about them. :func:`delete_account` revokes and
deletes the platform tokens, cancels what was still to go out, erases the user's rows and keeps
of the audit log only what the policy in the README needs (what was done and when, under a
pseudonym). Both leave an audit row. Plain functions: the export runs in the caller's session;
the deletion opens its own short transactions from the runtime's session factory, so that none
is open while a platform is asked to revoke a token (as a disconnect asks it). The portal calls
them; a test calls them directly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.audit import record
from app.connect.flows import FlowRuntime
from app.connect.revocation import Revocation, revoke_account
from app.errors import FieldError, NotFound, ValidationError
from app.models import (
    AuditLog,
    MemoryEntry,
    MetricSnapshot,
    Notification,
    NotificationPreferences,
    PlatformAccount,
    Post,
    User,
)
from app.platforms import display_name
from app.posts import cancel_upcoming
from app.validation import settings_of

logger = logging.getLogger(__name__)

#: The reason stamped on the posts cancelled by an account deletion.
DELETION_REASON = "account deleted"
#: What a deleted user's kept audit rows carry instead of their details.
ERASED = "erased"

#: Columns exported per table, in order (tokens are never among them).
ACCOUNT_COLUMNS = ("platform", "handle", "external_id", "status", "expires_at", "refresh_expires_at",
                   "created_at")
POST_COLUMNS = ("id", "platform", "status", "origin", "topic", "text", "scheduled_at", "published_at",
                "external_id", "review_reason", "impressions", "likes", "shares", "comments",
                "engagement_rate", "created_at")
METRIC_COLUMNS = ("post_id", "age", "taken_at", "impressions", "likes", "shares", "comments",
                  "engagement_rate", "simulated")
NOTIFICATION_COLUMNS = ("id", "kind", "severity", "subject", "body", "created_at", "emailed_at", "read_at")
AUDIT_COLUMNS = ("id", "created_at", "action", "actor", "post_id", "details")

#: Revokes one connected account's tokens at its platform (what a disconnect does; tests
#: replace it to watch the deletion): :func:`app.connect.revocation.revoke_account`.
Revoke = Callable[[FlowRuntime, PlatformAccount], Revocation]
#: Why an account connected while the deletion ran was deleted without a revocation.
LATE_CONNECTION = "connected while the account was being deleted: not tried"


class ConfirmationMismatch(ValidationError):
    """The email typed to confirm a deletion is not the account's."""


@dataclass(frozen=True)
class Deletion:
    """What deleting an account did."""

    user_ref: str
    posts_cancelled: int
    posts_deleted: int
    accounts: dict[str, bool | None]
    audit_rows_kept: int


def user_ref(user_id: int, email: str) -> str:
    """The pseudonym a deleted user's kept audit rows share: not reversible to the email."""
    return hashlib.sha256(f"{user_id}:{email.lower()}".encode()).hexdigest()[:16]


# -- download ----------------------------------------------------------------------------------


def export_user_data(session: Session, user_id: int, *, now: datetime, actor: str) -> bytes:
    """The user's data as a ZIP (JSON for everything, CSV for the tables), audited."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    post_ids = select(Post.id).where(Post.user_id == user_id)
    prefs = session.get(NotificationPreferences, user_id)
    tables: dict[str, tuple[Sequence[str], list[dict[str, Any]]]] = {
        "accounts": (ACCOUNT_COLUMNS, _rows(session.execute(
            select(*(getattr(PlatformAccount, c) for c in ACCOUNT_COLUMNS))
            .where(PlatformAccount.user_id == user_id).order_by(PlatformAccount.platform)))),
        "posts": (POST_COLUMNS, _rows(session.execute(
            select(*(getattr(Post, c) for c in POST_COLUMNS)).where(Post.user_id == user_id)
            .order_by(Post.scheduled_at, Post.id)))),
        "metrics": (METRIC_COLUMNS, _rows(session.execute(
            select(*(getattr(MetricSnapshot, c) for c in METRIC_COLUMNS))
            .where(MetricSnapshot.post_id.in_(post_ids)).order_by(MetricSnapshot.post_id, MetricSnapshot.id)))),
        "notifications": (NOTIFICATION_COLUMNS, _rows(session.execute(
            select(*(getattr(Notification, c) for c in NOTIFICATION_COLUMNS))
            .where(Notification.user_id == user_id).order_by(Notification.id)))),
        "audit": (AUDIT_COLUMNS, _rows(session.execute(
            select(*(getattr(AuditLog, c) for c in AUDIT_COLUMNS))
            .where(AuditLog.user_id == user_id).order_by(AuditLog.id)))),
    }
    reports = [{"key": key, "created_at": created, "content": content} for key, created, content in session.execute(
        select(MemoryEntry.key, MemoryEntry.created_at, MemoryEntry.content)
        .where(MemoryEntry.user_id == user_id, MemoryEntry.kind == "insight").order_by(MemoryEntry.key))]
    profile = {"email": user.email, "name": user.name, "created_at": user.created_at,
               "settings": settings_of(user.settings) if user.settings else None,
               "notification_preferences": {
                   "email_by_kind": dict(prefs.email_by_kind or {}) if prefs else {},
                   "weekly_report_email": prefs.weekly_report_email if prefs else True}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", _README.format(email=user.email, at=now.isoformat()))
        archive.writestr("settings.json", _json(profile))
        archive.writestr("reports.json", _json(reports))
        for name, (columns, rows) in tables.items():
            archive.writestr(f"{name}.json", _json(rows))
            archive.writestr(f"{name}.csv", _csv(columns, rows))
    record(session, "data.exported", user_id=user_id, actor=actor,
           details={name: len(rows) for name, (_, rows) in tables.items()} | {"reports": len(reports)})
    return buffer.getvalue()


_README = """Your data from Content Autopilot, for {email}, exported at {at} (UTC).

settings.json       your profile, autopilot settings and notification preferences
accounts.*          your connected accounts (their access tokens are never exported)
posts.*             every post, with its latest figures
metrics.*           every metrics snapshot taken of your posts
reports.json        your weekly reports
notifications.*     your notifications
audit.*             the audit log rows about you and your posts
Times are ISO 8601 in UTC. The .csv files hold the same rows as the .json files.
"""


def _rows(result: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot export {type(value).__name__}")


def _json(value: Any) -> str:
    return json.dumps(value, default=_plain, indent=2, ensure_ascii=False)


def _csv(columns: Sequence[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=_plain, ensure_ascii=False)
    return _plain(value) if isinstance(value, datetime | Enum) else value


# -- deletion ----------------------------------------------------------------------------------


def delete_account(runtime: FlowRuntime, user_id: int, confirmation: str, *, actor: str,
                   revoke: Revoke = revoke_account) -> Deletion:
    """Delete the account of ``user_id`` once ``confirmation`` is their email (any case).

    In three steps, so that no transaction (nor the user's row lock) waits on a platform:

    1. a short transaction checks the confirmation and reads the connected accounts;
    2. with no transaction open, each account's tokens are revoked at its platform exactly as a
       disconnect revokes them (``revoke``: :func:`app.connect.revocation.revoke_account`; a
       refusal is recorded and the token deleted anyway: we stop holding it);
    3. a second transaction locks the user's row and does the rest: the posts still to go out
       are cancelled (audited like any cancellation), the user's rows are deleted (settings,
       accounts and tokens, posts, metrics, reports, notifications, sessions: the foreign keys
       cascade), and the audit rows about them are kept under a pseudonym with their details
       erased (the README's audit policy). One ``account.deleted`` row records it, without the
       email, with each account's revocation: true, false (and why) or not offered. An account
       connected (or reconnected) between steps 1 and 3 had no revocation tried: it is deleted
       and recorded as not revoked.
    """
    with runtime.session_factory() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        if confirmation.strip().lower() != user.email.lower():
            raise ConfirmationMismatch([FieldError("confirm", confirmation,
                                                   "type your account's email address exactly to confirm")])
        held = list(session.scalars(select(PlatformAccount).where(PlatformAccount.user_id == user_id)))
    revocations = {account.platform: revoke(runtime, account) for account in held}
    for platform, revocation in revocations.items():
        if revocation.revoked is False:
            logger.warning("revoking the %s token of a deleted account failed: %s", platform, revocation.error)
    with runtime.session_factory.begin() as session:
        # Locks the user's row (not the joined settings: FOR UPDATE refuses an outer join's side),
        # so a concurrent workflow adding rows for the user waits for the deletion.
        if session.scalar(select(User.id).where(User.id == user_id).with_for_update()) is None:
            raise NotFound(f"no user with id {user_id}")
        user = session.get(User, user_id)
        assert user is not None
        ref = user_ref(user.id, user.email)
        read = {(account.platform, account.access_token_encrypted) for account in held}
        for platform, access in session.execute(select(PlatformAccount.platform, PlatformAccount.access_token_encrypted)
                                                .where(PlatformAccount.user_id == user_id)):
            if (platform, access) not in read:
                revocations[platform] = Revocation(False, LATE_CONNECTION)
        cancelled = cancel_upcoming(session, user_id, reason=DELETION_REASON, actor=actor)
        deleted_posts = session.scalar(select(func.count()).select_from(Post).where(Post.user_id == user_id)) or 0
        kept = session.execute(
            update(AuditLog).where(AuditLog.user_id == user_id)
            .values(user_id=None, post_id=None, details={ERASED: ref})).rowcount or 0  # type: ignore[attr-defined]
        session.flush()
        session.delete(user)
        session.flush()
        record(session, "account.deleted", actor=actor,
               details={"user_ref": ref, "posts_cancelled": len(cancelled), "posts_deleted": deleted_posts,
                        "accounts": {platform: _revocation(platform, revocation)
                                     for platform, revocation in revocations.items()},
                        "audit_rows_kept": kept})
    return Deletion(ref, len(cancelled), deleted_posts,
                    {platform: revocation.revoked for platform, revocation in revocations.items()}, kept)


def _revocation(platform: str, revocation: Revocation) -> dict[str, object]:
    """An account's line in the deletion's audit row: revoked true, false (and why) or not offered."""
    if revocation.revoked is None:
        return {"revoked": None, "revocation": f"not offered by {display_name(platform)}"}
    if revocation.revoked is False:
        return {"revoked": False, "revocation": revocation.error or "not confirmed"}
    return {"revoked": True}
