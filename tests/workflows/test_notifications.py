"""Notifications: deduplicated rows, and email over a real socket to a minimal local SMTP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import ConfigError
from app.models import Notification
from app.notifications import notify, send_email, send_pending_emails
from app.users import create_user
from tests.fakes.smtp import SmtpState, running_smtp


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpState, int]]:
    with running_smtp() as running:
        yield running


@pytest.fixture
def mail_settings(settings: Settings, smtp: tuple[SmtpState, int]) -> Settings:
    return replace(settings, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_starttls=False,
                   smtp_sender="autopilot@example.com")


@pytest.fixture
def user_id(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        return create_user(session, "carol@example.com", {}).id


def rows(sessions: sessionmaker[Session]) -> list[Notification]:
    with sessions() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def test_notify_skips_a_kind_already_sent_within_the_window(
        sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    with sessions.begin() as session:
        first = notify(session, user_id, "review_queue_growing", "5 posts", "body",
                       dedupe_since=now - timedelta(days=1), now=now)
        again = notify(session, user_id, "review_queue_growing", "6 posts", "body",
                       dedupe_since=now - timedelta(days=1), now=now + timedelta(hours=2))
        other_kind = notify(session, user_id, "account_needs_reauth", "Reconnect", "body",
                            dedupe_since=now - timedelta(days=1), now=now)
        undeduped = notify(session, user_id, "review_queue_growing", "7 posts", "body")
    assert first is not None and other_kind is not None and undeduped is not None
    assert again is None
    assert first.created_at == now
    with sessions.begin() as session:
        next_day = notify(session, user_id, "account_needs_reauth", "Reconnect", "body",
                          dedupe_since=now + timedelta(hours=1), now=now + timedelta(days=1))
    assert next_day is not None
    assert [r.subject for r in rows(sessions)] == ["5 posts", "Reconnect", "7 posts", "Reconnect"]


def test_without_smtp_nothing_is_sent_and_rows_stay_for_the_admin(
        sessions: sessionmaker[Session], settings: Settings, user_id: int, now: datetime) -> None:
    with sessions.begin() as session:
        notify(session, user_id, "account_needs_reauth", "Reconnect", "body")
    assert settings.smtp_host is None
    assert send_pending_emails(sessions, settings, now) == 0
    assert [r.emailed_at for r in rows(sessions)] == [None]


def test_pending_notifications_are_emailed_once(
        sessions: sessionmaker[Session], mail_settings: Settings, smtp: tuple[SmtpState, int],
        user_id: int, now: datetime) -> None:
    state, _ = smtp
    with sessions.begin() as session:
        notify(session, user_id, "account_needs_reauth", "Reconnect your X account", "X refused.")
        notify(session, user_id, "review_queue_growing", "5 posts are waiting", "Please review.")

    assert send_pending_emails(sessions, mail_settings, now) == 2
    assert send_pending_emails(sessions, mail_settings, now) == 0

    assert [m.recipients for m in state.mails] == [["carol@example.com"]] * 2
    assert [m.sender for m in state.mails] == ["autopilot@example.com"] * 2
    first = state.mails[0].message
    assert first["Subject"] == "Reconnect your X account"
    assert first.get_payload().strip() == "X refused."
    assert state.logins == []
    assert [r.emailed_at for r in rows(sessions)] == [now, now]


def test_smtp_login_is_used_when_a_username_is_set(
        sessions: sessionmaker[Session], mail_settings: Settings, smtp: tuple[SmtpState, int]) -> None:
    state, _ = smtp
    settings = replace(mail_settings, smtp_username="mailer", smtp_password="s3cret")
    send_email(settings, "dave@example.com", "Your weekly report", "Impressions: 1,234")
    assert state.logins == [("mailer", "s3cret")]
    [mail] = state.mails
    assert mail.recipients == ["dave@example.com"]
    assert mail.message["Subject"] == "Your weekly report"


def test_starttls_required_but_not_offered_sends_nothing_in_clear(
        sessions: sessionmaker[Session], mail_settings: Settings, smtp: tuple[SmtpState, int],
        user_id: int, now: datetime) -> None:
    state, _ = smtp
    with sessions.begin() as session:
        notify(session, user_id, "account_needs_reauth", "Reconnect", "body")
    settings = replace(mail_settings, smtp_starttls=True)
    assert send_pending_emails(sessions, settings, now) == 0
    assert state.mails == []
    assert [r.emailed_at for r in rows(sessions)] == [None]


def test_an_unreachable_server_leaves_notifications_unsent(
        sessions: sessionmaker[Session], mail_settings: Settings, user_id: int, now: datetime) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with sessions.begin() as session:
        notify(session, user_id, "account_needs_reauth", "Reconnect", "body")
    assert send_pending_emails(sessions, replace(mail_settings, smtp_port=port), now) == 0
    assert [r.emailed_at for r in rows(sessions)] == [None]


def test_send_email_without_a_host_names_the_setting(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="SMTP_HOST"):
        send_email(settings, "dave@example.com", "subject", "body")
