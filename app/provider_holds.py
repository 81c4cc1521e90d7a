"""Operator problems: pause a provider that only the operator can fix, and tell the operator once.

A monthly usage cap, exhausted credits or quota, a sunset API version: every call to that
provider fails the same way until the operator acts (:class:`OperatorProblem`). Retrying each
post or user on a timer would only multiply the failures, so the first failure pauses the
provider for everyone (a :class:`ProviderHold` row, read by every worker before calling it)
and leaves one operator notification (``user_id`` NULL, listed in the admin panel and emailed
to ``OPERATOR_EMAIL`` when set). When the pause ends one call checks whether the problem is
gone; if not, the pause is renewed without a second notification that day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import record
from app.models import (
    Notification,
    NotificationPreferences,
    PlatformAccount,
    ProviderHold,
    UserSettings,
)
from app.platforms import PLATFORMS, display_name, publisher_provider
from app.providers.errors import OperatorProblem

#: The same operator problem is notified at most once in this interval.
DEFAULT_OPERATOR_RENOTIFY = timedelta(days=1)
#: Characters of a provider's error kept on a hold.
DEFAULT_DETAIL_LENGTH = 1000


def active_hold(session: Session, provider: str, now: datetime) -> ProviderHold | None:
    """The pause of ``provider`` in force at ``now``, if any."""
    return session.scalar(
        select(ProviderHold).where(ProviderHold.provider == provider, ProviderHold.until > now))


def as_problem(hold: ProviderHold) -> OperatorProblem:
    """The problem a hold stands for, to fail work without calling the provider."""
    return OperatorProblem(f"{hold.provider} paused until {hold.until.isoformat()}: {hold.detail}",
                           provider=hold.provider, kind=hold.kind, pause=None)


def notify_operator(session: Session, kind: str, subject: str, body: str, now: datetime, *,
                    renotify: timedelta = DEFAULT_OPERATOR_RENOTIFY) -> Notification | None:
    """Add an operator notification, unless one of this ``kind`` was added within ``renotify``."""
    already = session.scalar(
        select(Notification.id)
        .where(Notification.user_id.is_(None), Notification.kind == kind,
               Notification.created_at >= now - renotify)
        .limit(1))
    if already is not None:
        return None
    row = Notification(user_id=None, kind=kind, severity="error", subject=subject, body=body,
                       created_at=now)
    session.add(row)
    session.flush()
    return row


def report_problem(session: Session, problem: OperatorProblem, now: datetime) -> datetime | None:
    """Record ``problem``: pause its provider (when it has a pause) and notify the operator once.

    Returns the end of the pause, or None when affected work should go to review at once.
    """
    until = now + problem.pause if problem.pause is not None else None
    detail = str(problem)[:DEFAULT_DETAIL_LENGTH]
    if until is not None:
        _upsert_hold(session, problem.provider, problem.kind, detail, now, until)
    action = (f"{problem.provider} is paused until {until:%Y-%m-%d %H:%M} UTC, then tried once "
              "again; posts that would be published too late wait in the review queue."
              if until is not None else "Affected posts wait in the review queue.")
    first = notify_operator(session, problem.kind, f"Action needed: {problem.provider} ({problem.kind})",
                            f"{detail}\n\n{action}", now)
    if first is not None and until is not None:
        notify_paused_users(session, problem.provider, until, now)
    if first is not None:
        record(session, "provider.operator_problem",
               details={"provider": problem.provider, "kind": problem.kind, "error": detail,
                        "paused_until": until.isoformat() if until else None})
    return until


#: The user notification kind of a pause that holds their posts.
NOTIFY_PROVIDER_PAUSED = "provider_paused"


def notify_paused_users(session: Session, provider: str, until: datetime, now: datetime) -> int:
    """Tell each user whose work the pause holds (a platform's publisher: its account holders;
    any other provider, research or generation: every opted-in user), once a day; how many."""
    platforms = [key for key in PLATFORMS if publisher_provider(key) == provider]
    if platforms:
        users = select(PlatformAccount.user_id).where(PlatformAccount.platform.in_(platforms)).distinct()
        what = f"Your posts to {', '.join(display_name(key) for key in platforms)}"
    else:
        users = select(UserSettings.user_id).where(UserSettings.enable_autonomous_mode.is_(True))
        what = "Your autopilot's research and writing"
    name = " and ".join(display_name(key) for key in platforms) if platforms else provider
    subject = f"{name} is paused until {until:%d %b %H:%M} UTC"
    # Once a day per provider (the subject names it): a renewed pause is not news.
    already = set(session.scalars(select(Notification.user_id).where(
        Notification.kind == NOTIFY_PROVIDER_PAUSED, Notification.created_at >= now - DEFAULT_OPERATOR_RENOTIFY,
        Notification.subject.startswith(f"{name} is paused"), Notification.user_id.is_not(None))))
    ids = [user_id for user_id in session.scalars(users) if user_id not in already]
    chosen: dict[int, dict[str, Any]] = dict(session.execute(select(NotificationPreferences.user_id, NotificationPreferences.email_by_kind)
                                  .where(NotificationPreferences.user_id.in_(ids))).all()) if ids else {}
    body = (f"{what} wait: the operator paused {name} after a problem only they can fix, until "
            f"{until:%Y-%m-%d %H:%M} UTC. Nothing is lost; the autopilot tries again then.")
    if ids:
        session.execute(insert(Notification), [
            {"user_id": user_id, "kind": NOTIFY_PROVIDER_PAUSED, "severity": "warning", "subject": subject,
             "body": body, "created_at": now,
             "email_delivery": (chosen.get(user_id) or {}).get(NOTIFY_PROVIDER_PAUSED, "now")} for user_id in ids])
    return len(ids)


def _upsert_hold(session: Session, provider: str, kind: str, detail: str, now: datetime,
                 until: datetime) -> None:
    # Two workers may hit the problem at once: the second one's insert becomes an update.
    for _ in range(2):
        hold = session.get(ProviderHold, provider, with_for_update=True)
        if hold is not None:
            hold.kind, hold.detail, hold.until = kind, detail, max(hold.until, until)
            session.flush()
            return
        try:
            with session.begin_nested():
                session.add(ProviderHold(provider=provider, kind=kind, detail=detail, since=now,
                                         until=until))
            return
        except IntegrityError:
            continue


def clear_hold(session: Session, provider: str) -> bool:
    """Lift a provider's pause (the operator fixed the problem); True if there was one."""
    return bool(session.execute(delete(ProviderHold).where(ProviderHold.provider == provider))
                .rowcount)  # type: ignore[attr-defined]
