"""A week before a token that cannot be renewed expires, its owner is told once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.models import Notification
from app.providers.base import TokenSet
from app.users import connect_account
from app.workflows.accounts import warn_expiring_accounts
from app.workflows.ticks import run_tick
from tests.factories import make_users

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def _connect(runtime, email: str, platform: str, expires_in: timedelta, refresh: str | None) -> None:
    with runtime.session_factory() as session, session.begin():
        connect_account(session, runtime.vault, email, platform,
                        TokenSet("access", refresh, NOW + expires_in), handle="@h")


def _notifications(runtime) -> list[tuple[int, str]]:
    with runtime.session_factory() as session:
        return [tuple(r) for r in session.execute(select(Notification.user_id, Notification.kind)
                                                  .order_by(Notification.user_id))]


def test_expiring_linkedin_token_warns_once_a_week_ahead(runtime):
    soon, later, renewable = make_users(runtime, 3)
    _connect(runtime, "user0@example.com", "linkedin", timedelta(days=6), None)
    _connect(runtime, "user1@example.com", "linkedin", timedelta(days=8), None)
    _connect(runtime, "user2@example.com", "twitter", timedelta(hours=2), "refresh")
    with runtime.session_factory() as session, session.begin():
        assert len(warn_expiring_accounts(session, NOW)) == 1
    with runtime.session_factory() as session, session.begin():
        assert warn_expiring_accounts(session, NOW + timedelta(hours=12)) == []  # once per notice period
    assert _notifications(runtime) == [(soon, "account_expiring:linkedin")]
    with runtime.session_factory() as session, session.begin():
        assert len(warn_expiring_accounts(session, NOW + timedelta(days=2))) == 1  # now within a week
    assert _notifications(runtime) == [(soon, "account_expiring:linkedin"), (later, "account_expiring:linkedin")]


def test_the_daily_metrics_tick_runs_the_check(runtime, clock):
    (user,) = make_users(runtime, 1)
    _connect(runtime, "user0@example.com", "linkedin", timedelta(days=3), None)
    clock.now = NOW
    run_tick(runtime, "metrics_collection", NOW, trigger="periodic", message_id="m")
    assert _notifications(runtime) == [(user, "account_expiring:linkedin")]
