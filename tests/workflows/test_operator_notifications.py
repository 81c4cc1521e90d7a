"""Operator notifications (user_id NULL): once per problem a day, emailed to OPERATOR_EMAIL."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.crypto import TokenVault
from app.models import Notification, ProviderHold
from app.notifications import notify, send_pending_emails, set_preferences
from app.provider_holds import active_hold, clear_hold, notify_operator, report_problem
from app.providers.errors import OperatorProblem
from app.users import create_user
from tests import factories
from tests.workflows.test_notifications import SmtpState, mail_settings, smtp  # noqa: F401 - fixtures


def problem(pause: timedelta | None = timedelta(hours=1)) -> OperatorProblem:
    return OperatorProblem("X usage cap exceeded: Monthly product cap", provider="x",
                           kind="x_usage_capped", pause=pause)


def test_a_problem_pauses_its_provider_and_notifies_the_operator_once_a_day(
        sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions.begin() as session:
        until = report_problem(session, problem(), now)
        again = report_problem(session, problem(), now + timedelta(minutes=5))
    assert until == now + timedelta(hours=1)
    assert again == now + timedelta(hours=1, minutes=5)
    with sessions() as session:
        hold = active_hold(session, "x", now + timedelta(minutes=30))
        assert hold is not None and hold.until == again and hold.kind == "x_usage_capped"
        assert active_hold(session, "x", again) is None  # the pause ends by itself
        notes = list(session.scalars(select(Notification)))
    assert [(n.user_id, n.kind, n.severity) for n in notes] == [(None, "x_usage_capped", "error")]
    assert "Monthly product cap" in notes[0].body and "paused until" in notes[0].body
    with sessions.begin() as session:
        assert report_problem(session, problem(), now + timedelta(days=1, minutes=1)) is not None
        assert len(list(session.scalars(select(Notification)))) == 2  # a day later: told again
        assert clear_hold(session, "x") and session.get(ProviderHold, "x") is None


def test_a_problem_without_a_pause_only_notifies(sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions.begin() as session:
        assert report_problem(session, problem(pause=None), now) is None
        assert session.get(ProviderHold, "x") is None
        assert len(list(session.scalars(select(Notification)))) == 1


def test_operator_notifications_go_to_operator_email_and_never_block_user_mail(
        sessions: sessionmaker[Session], mail_settings: Settings,  # noqa: F811
        smtp: tuple[SmtpState, int], now: datetime) -> None:  # noqa: F811
    state, _ = smtp
    with sessions.begin() as session:
        user_id = create_user(session, "carol@example.com", {}).id
        notify_operator(session, "x_usage_capped", "Action needed: x", "Raise the plan.", now)
        notify(session, user_id, "account_needs_reauth", "Reconnect", "X refused.")

    # Without OPERATOR_EMAIL the operator's row stays for the admin panel; the user's is sent.
    assert send_pending_emails(sessions, mail_settings, now) == 1
    assert [m.recipients for m in state.mails] == [["carol@example.com"]]
    assert send_pending_emails(sessions, mail_settings, now) == 0

    with_operator = replace(mail_settings, operator_email="ops@example.com")
    assert send_pending_emails(sessions, with_operator, now) == 1
    assert state.mails[-1].recipients == ["ops@example.com"]
    assert state.mails[-1].message["Subject"] == "Action needed: x"


def test_operator_email_must_be_an_address() -> None:
    import pytest

    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="OPERATOR_EMAIL"):
        Settings.from_env({"OPERATOR_EMAIL": "ops"})
    assert Settings.from_env({"OPERATOR_EMAIL": "ops@example.com"}).operator_email == "ops@example.com"


def test_a_pause_tells_the_users_it_holds_once_a_day_as_they_chose(
        sessions: sessionmaker[Session], vault: TokenVault, now: datetime) -> None:
    settings = {"timezone": "UTC", "preferred_platforms": ["twitter"], "posting_times": {"twitter": ["09:00"]},
                "topics": ["python"], "enable_autonomous_mode": True}
    on_x = factories.make_user(sessions, vault, "x@example.com", settings=settings, connect=("twitter",))
    on_linkedin = factories.make_user(sessions, vault, "li@example.com", settings=settings, connect=("linkedin",))
    with sessions.begin() as session:
        set_preferences(session, on_x, {"provider_paused": "digest"}, weekly_report_email=True, actor="t")
        report_problem(session, problem(), now)
        report_problem(session, problem(), now + timedelta(hours=2))
    with sessions() as session:
        told = session.execute(select(Notification.user_id, Notification.email_delivery, Notification.subject)
                               .where(Notification.kind == "provider_paused")).all()
    assert [(user_id, delivery) for user_id, delivery, _ in told] == [(on_x, "digest")]
    assert told[0].subject.startswith("X is paused until")
    with sessions.begin() as session:
        report_problem(session, OperatorProblem("quota", provider="openai", kind="openai_insufficient_quota",
                                                pause=timedelta(hours=1)), now)
        assert {n.user_id for n in session.scalars(select(Notification).where(
            Notification.kind == "provider_paused", Notification.subject.like("openai%")))} == {on_x, on_linkedin}
