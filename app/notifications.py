"""Notifications: rows a user (and the admin) can read, optionally sent by email.

A notification is always written to the database first, in the transaction of the event it
reports, so nothing is lost when no mail server is configured or it is down: the portal and the
admin list every row, and :func:`send_pending_emails` delivers the unsent ones on its next run.

Each user chooses, per kind (:data:`USER_KINDS`), whether it is emailed at once, gathered in a
daily digest (:func:`send_daily_digests`) or not emailed at all, and whether the weekly report
is emailed (:class:`app.models.NotificationPreferences`). The choice is stamped on the row when
it is created (``email_delivery``), so a row is emailed the way the user wanted it then, once.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import record
from app.config import Settings
from app.errors import ConfigError, FieldError, ValidationError
from app.models import Notification, NotificationPreferences, User

logger = logging.getLogger(__name__)

#: Seconds to wait for the SMTP server to connect or answer one command.
DEFAULT_SMTP_TIMEOUT_SECONDS = 30
#: Unsent notifications emailed per run at most; the rest wait for the next run.
DEFAULT_EMAIL_BATCH_SIZE = 100
#: The longest subject a notification keeps (its column's size).
SUBJECT_CHARS = 200
#: The least time between two daily digests of one user.
DIGEST_INTERVAL = timedelta(days=1)

#: How a kind of notification reaches the user's inbox.
EMAIL_NOW, EMAIL_DIGEST, EMAIL_OFF = "now", "digest", "off"
EMAIL_CHOICES = {EMAIL_NOW: "Email at once", EMAIL_DIGEST: "In a daily digest", EMAIL_OFF: "Not by email"}

#: The kinds of notification a user receives (the key each producer passes to :func:`notify`),
#: with the words the portal's preferences show.
USER_KINDS = {
    "account_needs_reauth": "An account needs re-authorisation",
    "review_queue_growing": "Posts sent to review",
    "provider_paused": "A provider pause holds your posts",
    "generation_failed": "Today's posts could not be generated",
}


def notify(
    session: Session,
    user_id: int,
    kind: str,
    subject: str,
    body: str,
    severity: str = "warning",
    *,
    dedupe_since: datetime | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Add a notification for ``user_id`` to the session's transaction.

    With ``dedupe_since``, nothing is added (and None returned) when a notification of the
    same ``kind`` was already created for the user since then: one reminder a day is help,
    one per failed post is noise. The user's row is locked for the check on PostgreSQL, so
    two workers reporting the same event at once still create one notification.
    ``now`` stamps ``created_at`` (default: the wall clock); pass the workflow's clock so
    the dedupe window and the rows agree.
    """
    if dedupe_since is not None:
        session.execute(select(User.id).where(User.id == user_id).with_for_update())
        already = session.scalar(
            select(Notification.id)
            .where(
                Notification.user_id == user_id,
                Notification.kind == kind,
                Notification.created_at >= dedupe_since,
            )
            .limit(1)
        )
        if already is not None:
            return None
    row = Notification(user_id=user_id, kind=kind, severity=severity, subject=subject, body=body,
                       email_delivery=email_delivery(session, user_id, kind))
    if now is not None:
        row.created_at = now
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Notice:
    """A notification to add with :func:`notify_many`."""

    user_id: int
    kind: str
    subject: str
    body: str
    severity: str = "warning"


def notify_many(session: Session, notices: Sequence[Notice], now: datetime) -> int:
    """Add ``notices`` to the session's transaction in one INSERT, each stamped with its user's
    email choice for its kind (read in one query): for a batch's events, never one row at a time."""
    if not notices:
        return 0
    users = sorted({notice.user_id for notice in notices})
    chosen: dict[int, Mapping[str, str] | None] = dict(session.execute(  # type: ignore[arg-type]
        select(NotificationPreferences.user_id, NotificationPreferences.email_by_kind)
        .where(NotificationPreferences.user_id.in_(users))).all())

    def delivery(notice: Notice) -> str:
        value = (chosen.get(notice.user_id) or {}).get(notice.kind, EMAIL_NOW)
        return value if value in EMAIL_CHOICES else EMAIL_NOW

    session.execute(insert(Notification), [
        {"user_id": notice.user_id, "kind": notice.kind, "severity": notice.severity,
         "subject": notice.subject[:SUBJECT_CHARS], "body": notice.body, "created_at": now,
         "email_delivery": delivery(notice)} for notice in notices])
    return len(notices)


@contextmanager
def _smtp(settings: Settings) -> Iterator[smtplib.SMTP]:
    """An SMTP connection: STARTTLS when configured (refused if the server does not offer
    it, rather than sending in clear), then login when a username is set."""
    if not settings.smtp_host:
        raise ConfigError("SMTP_HOST", "", "set it to send email")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=DEFAULT_SMTP_TIMEOUT_SECONDS) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        yield smtp


def _message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def send_email(settings: Settings, to: str, subject: str, body: str) -> None:
    """Send one plain-text email. Raises ConfigError without SMTP_HOST, smtplib errors on failure."""
    with _smtp(settings) as smtp:
        smtp.send_message(_message(settings, to, subject, body))


def send_pending_emails(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    *,
    batch_size: int = DEFAULT_EMAIL_BATCH_SIZE,
) -> int:
    """Email every notification not emailed yet, marking ``emailed_at``; return how many were sent.

    Without SMTP_HOST nothing is sent and the rows stay for the admin panel. Each row is
    locked (skipping rows another sender holds), sent, and marked in its own transaction,
    so two senders never send the same row and a failure part-way loses nothing: the
    connection error is logged and the remaining rows wait for the next run.
    """
    if not settings.smtp_host:
        return 0
    # Operator notifications (no user) are emailed to OPERATOR_EMAIL, or left for the admin.
    # A user's rows go now only when they chose "at once" (digests: send_daily_digests).
    recipients: ColumnElement[bool] = Notification.user_id.is_not(None) & (Notification.email_delivery == EMAIL_NOW)
    if settings.operator_email:
        recipients = or_(recipients, Notification.user_id.is_(None))
    with session_factory() as session:
        pending = list(
            session.execute(
                select(Notification.id)
                .where(Notification.emailed_at.is_(None), recipients)
                .order_by(Notification.created_at, Notification.id)
                .limit(batch_size)
            ).scalars()
        )
    if not pending:
        return 0
    sent = 0
    try:
        with _smtp(settings) as smtp, session_factory() as session:
            for notification_id in pending:
                with session.begin():
                    row = session.execute(
                        select(Notification, User.email)
                        .outerjoin(User, User.id == Notification.user_id)
                        .where(Notification.id == notification_id, Notification.emailed_at.is_(None))
                        .with_for_update(skip_locked=True, of=Notification)
                    ).first()
                    if row is None:
                        continue  # sent meanwhile by another run, or being sent now
                    notification, user_email = row
                    to = user_email if notification.user_id is not None else settings.operator_email
                    if not to:
                        continue
                    smtp.send_message(_message(settings, to, notification.subject, notification.body))
                    notification.emailed_at = now
                sent += 1
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("email delivery stopped after %d of %d notifications: %s", sent, len(pending), exc)
    return sent


# -- a user's preferences, digests and reading -----------------------------------------------


def preferences(session: Session, user_id: int) -> NotificationPreferences:
    """The user's preferences (the defaults, not added to the session, when they set none)."""
    found = session.get(NotificationPreferences, user_id)
    return found if found is not None else NotificationPreferences(
        user_id=user_id, email_by_kind={}, weekly_report_email=True)


def email_delivery(session: Session, user_id: int, kind: str) -> str:
    """How a new notification of ``kind`` is emailed to ``user_id`` (their preference, else at once)."""
    chosen = session.scalar(select(NotificationPreferences.email_by_kind)
                            .where(NotificationPreferences.user_id == user_id))
    value = (chosen or {}).get(kind, EMAIL_NOW)
    return value if value in EMAIL_CHOICES else EMAIL_NOW


def weekly_report_by_email(session: Session, user_id: int) -> bool:
    """Whether the user wants the weekly report emailed (the default: yes)."""
    chosen = session.scalar(select(NotificationPreferences.weekly_report_email)
                            .where(NotificationPreferences.user_id == user_id))
    return True if chosen is None else bool(chosen)


def set_preferences(session: Session, user_id: int, email_by_kind: Mapping[str, Any], *,
                    weekly_report_email: bool, actor: str) -> NotificationPreferences:
    """Validate and store the user's choices (audited). Unknown kinds or choices are refused
    with a message naming the valid ones; nothing is stored then."""
    errors = []
    clean: dict[str, str] = {}
    for kind, choice in email_by_kind.items():
        if kind not in USER_KINDS:
            errors.append(FieldError(kind, kind, f"unknown kind; expected one of {', '.join(USER_KINDS)}"))
        elif choice not in EMAIL_CHOICES:
            errors.append(FieldError(kind, choice, f"expected one of {', '.join(EMAIL_CHOICES)}"))
        else:
            clean[kind] = str(choice)
    if errors:
        raise ValidationError(errors)
    row = session.get(NotificationPreferences, user_id, with_for_update=True)
    if row is None:
        row = NotificationPreferences(user_id=user_id, email_by_kind={}, weekly_report_email=True)
        session.add(row)
    before = {"email_by_kind": dict(row.email_by_kind or {}), "weekly_report_email": row.weekly_report_email}
    row.email_by_kind = {**(row.email_by_kind or {}), **clean}
    row.weekly_report_email = bool(weekly_report_email)
    session.flush()
    record(session, "notifications.preferences", user_id=user_id, actor=actor,
           details={"before": before, "after": {"email_by_kind": row.email_by_kind,
                                                "weekly_report_email": row.weekly_report_email}})
    return row


def unread_count(session: Session, user_id: int) -> int:
    """The user's notifications not read yet (the count in the portal's navigation)."""
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def mark_read(session: Session, user_id: int, now: datetime, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications ``ids`` (all of them with None) read; another user's ids
    are ignored. Returns how many changed."""
    query = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    return session.execute(query.values(read_at=now)).rowcount or 0  # type: ignore[attr-defined]


def send_daily_digests(session_factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    """Email each user with notifications waiting for their digest one email listing them, at
    most once per :data:`DIGEST_INTERVAL`; return how many digests were sent.

    Each user's preferences row is locked (skipping one another sender holds) while their
    digest is sent and its rows marked, in one transaction: a failed send rolls back and the
    rows wait for the next run; a sent one is never sent again.
    """
    if not settings.smtp_host:
        return 0
    with session_factory() as session:
        users = list(session.scalars(
            select(Notification.user_id).distinct()
            .where(Notification.emailed_at.is_(None), Notification.email_delivery == EMAIL_DIGEST,
                   Notification.user_id.is_not(None))))
    sent = 0
    try:
        with _smtp(settings) as smtp, session_factory() as session:
            for user_id in users:
                with session.begin():
                    prefs = session.execute(
                        select(NotificationPreferences).where(NotificationPreferences.user_id == user_id)
                        .with_for_update(skip_locked=True)).scalar_one_or_none()
                    if prefs is None or (prefs.digest_sent_at is not None
                                         and now - prefs.digest_sent_at < DIGEST_INTERVAL):
                        continue
                    rows = session.execute(
                        select(Notification, User.email).join(User, User.id == Notification.user_id)
                        .where(Notification.user_id == user_id, Notification.emailed_at.is_(None),
                               Notification.email_delivery == EMAIL_DIGEST)
                        .order_by(Notification.created_at, Notification.id)).all()
                    if not rows:
                        continue
                    body = "\n\n".join(f"{n.created_at:%Y-%m-%d %H:%M} UTC - {n.subject}\n{n.body}" for n, _ in rows)
                    smtp.send_message(_message(settings, rows[0][1], f"Your daily digest: {len(rows)} "
                                                                     f"notification{'' if len(rows) == 1 else 's'}",
                                               body))
                    for notification, _ in rows:
                        notification.emailed_at = now
                    prefs.digest_sent_at = now
                sent += 1
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("digest delivery stopped after %d digests: %s", sent, exc)
    return sent
