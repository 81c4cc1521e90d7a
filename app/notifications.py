"""Notifications: rows a user (and the admin) can read, optionally sent by email.

A notification is always written to the database first, in the transaction of the event it
reports, so nothing is lost when no mail server is configured or it is down: the admin panel
lists every row and :func:`send_pending_emails` delivers the unsent ones on its next run.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import ConfigError
from app.models import Notification, User

logger = logging.getLogger(__name__)

#: Seconds to wait for the SMTP server to connect or answer one command.
DEFAULT_SMTP_TIMEOUT_SECONDS = 30
#: Unsent notifications emailed per run at most; the rest wait for the next run.
DEFAULT_EMAIL_BATCH_SIZE = 100


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
    row = Notification(user_id=user_id, kind=kind, severity=severity, subject=subject, body=body)
    if now is not None:
        row.created_at = now
    session.add(row)
    session.flush()
    return row


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
    recipients: ColumnElement[bool] = Notification.user_id.is_not(None)
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
