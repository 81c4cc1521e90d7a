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
from app.errors import ConfigError, ValidationError
from app.models import AuditLog, Notification
from app.notifications import (
    USER_KINDS,
    mark_read,
    notify,
    preferences,
    send_daily_digests,
    send_email,
    send_pending_emails,
    set_preferences,
    unread_count,
)
from app.users import create_user
from app.workflows.accounts import NOTIFY_REAUTH
from app.workflows.publish_outcomes import NOTIFY_REVIEW_QUEUE
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


def test_every_user_kind_produced_has_a_preference() -> None:
    assert {NOTIFY_REAUTH, NOTIFY_REVIEW_QUEUE, "generation_failed", "provider_paused"} == set(USER_KINDS)


def test_preferences_decide_how_each_kind_is_emailed_at_once_digest_or_off(
        sessions: sessionmaker[Session], mail_settings: Settings, smtp: tuple[SmtpState, int],
        user_id: int, now: datetime) -> None:
    state, _ = smtp
    with sessions.begin() as session:
        assert preferences(session, user_id).weekly_report_email is True
        set_preferences(session, user_id, {"account_needs_reauth": "now", "review_queue_growing": "digest",
                                           "generation_failed": "off"}, weekly_report_email=False, actor="user:carol")
        notify(session, user_id, "account_needs_reauth", "Reconnect", "X refused.", now=now)
        notify(session, user_id, "review_queue_growing", "5 posts wait", "Review them.", now=now)
        notify(session, user_id, "review_queue_growing", "6 posts wait", "Review them.", now=now)
        notify(session, user_id, "generation_failed", "No posts today", "Generation failed.", now=now)
    assert send_pending_emails(sessions, mail_settings, now) == 1
    assert send_daily_digests(sessions, mail_settings, now) == 1
    # Once: the same run again, and a later one within the day, send nothing more.
    assert send_pending_emails(sessions, mail_settings, now) == 0
    assert send_daily_digests(sessions, mail_settings, now + timedelta(hours=1)) == 0
    assert [m.message["Subject"] for m in state.mails] == ["Reconnect", "Your daily digest: 2 notifications"]
    digest = state.mails[1].message.get_payload()
    assert "5 posts wait" in digest and "6 posts wait" in digest and "No posts today" not in digest
    assert [(r.email_delivery, r.emailed_at) for r in rows(sessions)] == [
        ("now", now), ("digest", now), ("digest", now), ("off", None)]
    # A digest row arriving later waits for the next day's digest.
    with sessions.begin() as session:
        notify(session, user_id, "review_queue_growing", "7 posts wait", "Review them.", now=now)
    assert send_daily_digests(sessions, mail_settings, now + timedelta(hours=23)) == 0
    assert send_daily_digests(sessions, mail_settings, now + timedelta(days=1)) == 1
    with sessions() as session:
        audit = session.scalars(select(AuditLog.action).where(AuditLog.user_id == user_id)).all()
    assert "notifications.preferences" in audit


def test_a_digest_is_sent_later_once_when_smtp_is_down(
        sessions: sessionmaker[Session], mail_settings: Settings, smtp: tuple[SmtpState, int],
        user_id: int, now: datetime) -> None:
    state, _ = smtp
    with sessions.begin() as session:
        set_preferences(session, user_id, {"generation_failed": "digest"}, weekly_report_email=True, actor="t")
        notify(session, user_id, "generation_failed", "No posts today", "Generation failed.", now=now)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert send_daily_digests(sessions, replace(mail_settings, smtp_port=closed_port), now) == 0
    assert [r.emailed_at for r in rows(sessions)] == [None]
    assert send_daily_digests(sessions, mail_settings, now + timedelta(minutes=15)) == 1
    assert send_daily_digests(sessions, mail_settings, now + timedelta(days=2)) == 0
    assert len(state.mails) == 1


def test_bad_preferences_are_refused_whole(sessions: sessionmaker[Session], user_id: int) -> None:
    with sessions.begin() as session, pytest.raises(ValidationError, match="expected one of now, digest, off"):
        set_preferences(session, user_id, {"account_needs_reauth": "digest", "generation_failed": "hourly"},
                        weekly_report_email=True, actor="t")
    with sessions() as session:
        assert preferences(session, user_id).email_by_kind == {}


def test_unread_count_and_marking_read_touch_only_the_users_rows(
        sessions: sessionmaker[Session], user_id: int, now: datetime) -> None:
    with sessions.begin() as session:
        other = create_user(session, "dan@example.com", {}).id
        mine = [notify(session, user_id, "generation_failed", f"n{i}", "b", now=now) for i in range(3)]
        theirs = notify(session, other, "generation_failed", "t", "b", now=now)
    assert theirs is not None
    with sessions.begin() as session:
        assert unread_count(session, user_id) == 3
        assert mark_read(session, user_id, now, [mine[0].id, theirs.id]) == 1  # type: ignore[union-attr]
        assert unread_count(session, user_id) == 2 and unread_count(session, other) == 1
        assert mark_read(session, user_id, now) == 2
        assert unread_count(session, user_id) == 0 and unread_count(session, other) == 1
