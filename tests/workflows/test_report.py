"""The weekly report workflow on PostgreSQL: stored as an insight, idempotent, read back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.crypto import TokenVault
from app.errors import NotFound
from app.models import (
    AccountStatus,
    AuditLog,
    ExecutionStatus,
    MemoryEntry,
    PlatformAccount,
    Post,
    PostStatus,
    WorkflowExecution,
)
from app.providers.sandbox import SandboxPublisher
from app.runtime import Runtime
from app.workflows.report import latest_insights, report_key, weekly_report_for_user
from tests import factories
from tests.factories import make_user
from tests.fakes.smtp import Mail, running_smtp

#: Sunday 22 November 2026, 08:00 UTC: the report covers [15 Nov 08:00, 22 Nov 08:00).
WEEK_END = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
MOVE_SENTENCE = ("Move your X posting time from 09:00 to 17:00: "
                 "posts at 17:00 had 5.0% engagement vs 2.0%")


def make_runtime(settings: Settings, sessions: sessionmaker[Session], vault: TokenVault) -> Runtime:
    return factories.make_runtime(settings, sessions, vault, clock=lambda: WEEK_END + timedelta(minutes=1),
                                  publishers={p: SandboxPublisher(p) for p in ("twitter", "linkedin")})


#: The report's user posts on X at 09:00 and 17:00 and on LinkedIn at 10:00 (Berlin).
POSTING_TIMES = {"twitter": ["09:00", "17:00"], "linkedin": ["10:00"]}


def add_post(session: Session, user_id: int, scheduled_at: datetime, *, rate: float | None = None,
             status: str = PostStatus.PUBLISHED, platform: str = "twitter", **fields: Any) -> Post:
    published = status == PostStatus.PUBLISHED
    post = Post(user_id=user_id, platform=platform, text=f"about {fields.get('topic', 'things')}", status=status,
                scheduled_at=scheduled_at, published_at=scheduled_at + timedelta(seconds=10) if published else None,
                external_id=f"x-{scheduled_at:%d%H%M}-{platform}" if published else None,
                impressions=1000 if rate is not None else None,
                likes=round(rate * 1000) if rate is not None else None,
                shares=0 if rate is not None else None, comments=0 if rate is not None else None,
                engagement_rate=rate, metrics_updated_at=scheduled_at + timedelta(days=1) if rate is not None else None,
                **fields)
    session.add(post)
    return post


def seed_week(sessions: sessionmaker[Session], user_id: int) -> None:
    """Twitter at 09:00 Berlin (08:00 UTC) engages 2 %, at 17:00 (16:00 UTC) 5 %; one post reviewed."""
    with sessions() as session, session.begin():
        for day in (16, 17):
            add_post(session, user_id, datetime(2026, 11, day, 8, 0, tzinfo=UTC), rate=0.02, topic="ORMs")
            add_post(session, user_id, datetime(2026, 11, day, 16, 0, tzinfo=UTC), rate=0.05, topic="Postgres")
        add_post(session, user_id, datetime(2026, 11, 18, 9, 0, tzinfo=UTC), status=PostStatus.NEEDS_REVIEW,
                 platform="linkedin", review_reason="approval")
        # The previous week (for the trend) and posts outside both weeks (ignored).
        add_post(session, user_id, datetime(2026, 11, 10, 8, 0, tzinfo=UTC), rate=0.02)
        add_post(session, user_id, WEEK_END, status=PostStatus.SCHEDULED)
        add_post(session, user_id, datetime(2026, 11, 1, 8, 0, tzinfo=UTC), rate=0.5)
        for status, day in ((ExecutionStatus.SUCCEEDED, 16), (ExecutionStatus.SUCCEEDED, 17),
                            (ExecutionStatus.FAILED, 18), (ExecutionStatus.FAILED, 23)):
            at = datetime(2026, 11, day, 6, 0, tzinfo=UTC)
            session.add(WorkflowExecution(workflow="daily_generation", user_id=user_id, slot=at,
                                          status=status, created_at=at))


def insights(sessions: sessionmaker[Session]) -> list[MemoryEntry]:
    with sessions() as session:
        return list(session.scalars(select(MemoryEntry).where(MemoryEntry.kind == "insight")))


def audit_actions(sessions: sessionmaker[Session], prefix: str = "report.") -> list[str]:
    with sessions() as session:
        return list(session.scalars(
            select(AuditLog.action).where(AuditLog.action.like(f"{prefix}%")).order_by(AuditLog.id)))


def test_weekly_report_is_stored_as_an_insight(sessions, vault, settings) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    seed_week(sessions, user)

    entry = weekly_report_for_user(make_runtime(settings, sessions, vault), user, WEEK_END)

    assert (entry.user_id, entry.kind, entry.key) == (user, "insight", report_key(WEEK_END))
    assert report_key(WEEK_END) == "weekly:2026-11-22"
    [stored] = insights(sessions)
    content = stored.content
    assert content["period"] == {"start": "2026-11-15T08:00:00+00:00", "end": "2026-11-22T08:00:00+00:00"}
    assert content["posts"] == {"scheduled": 5, "published": 4, "on_time": 4, "late": 0, "failed": 0,
                                "reviewed": 1, "cancelled": 0, "pending": 0}
    assert content["executions"]["success_rate"] == pytest.approx(2 / 3)
    assert list(content["by_hour"]) == ["09:00", "17:00"]  # Berlin time, not UTC
    assert list(content["by_weekday"]) == ["Monday", "Tuesday"]
    assert [p["engagement_rate"] for p in content["top"]] == pytest.approx([0.05, 0.05, 0.02])
    assert content["trend"]["engagement_rate_change_pct"] == pytest.approx(75.0)
    assert content["recommendations"] == [
        "1 post waited for review: 1 approval. Approve, edit or cancel it in the review queue.",
        MOVE_SENTENCE,
        "Topics that worked: Postgres (5.0%)",
    ]
    assert content["summary"].startswith("Week 2026-11-15 to 2026-11-22: 5 posts scheduled")
    assert audit_actions(sessions) == ["report.created"]


def test_rerunning_the_week_updates_the_entry_instead_of_adding_one(sessions, vault, settings) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    seed_week(sessions, user)
    runtime = make_runtime(settings, sessions, vault)
    first = weekly_report_for_user(runtime, user, WEEK_END)
    with sessions() as session, session.begin():
        add_post(session, user, datetime(2026, 11, 19, 16, 0, tzinfo=UTC), status=PostStatus.FAILED)

    second = weekly_report_for_user(runtime, user, WEEK_END)

    assert second.id == first.id
    [stored] = insights(sessions)
    assert stored.content["posts"]["failed"] == 1
    assert stored.content["posts"]["scheduled"] == 6
    assert audit_actions(sessions) == ["report.created", "report.updated"]


def test_latest_insights_returns_the_newest_reports_recommendations(sessions, vault, settings) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    other = make_user(sessions, vault, "bob@example.com", posting_times=POSTING_TIMES)
    seed_week(sessions, user)
    runtime = make_runtime(settings, sessions, vault)
    newest = weekly_report_for_user(runtime, user, WEEK_END).content["recommendations"]
    weekly_report_for_user(runtime, other, WEEK_END)
    with sessions() as session, session.begin():
        # Inserted after the newest on purpose: the week in the key orders them, not insertion.
        session.add_all([
            MemoryEntry(user_id=user, kind="insight", key="weekly:2026-11-15",
                        content={"recommendations": ["Topics that worked: Postgres (5.0%)", "Older advice"]}),
            MemoryEntry(user_id=user, kind="insight", key="weekly:2026-11-08",
                        content={"recommendations": ["Oldest advice"]}),
            MemoryEntry(user_id=user, kind="research", key="weekly:2099-01-01",
                        content={"recommendations": ["not an insight"]}),
        ])

    with sessions() as session:
        assert latest_insights(session, user, limit=1) == newest
        # Two weeks by default, newest first, a sentence repeated by both weeks only once.
        assert latest_insights(session, user) == [*newest, "Older advice"]
        assert latest_insights(session, user, limit=10) == [*newest, "Older advice", "Oldest advice"]
        assert latest_insights(session, other + 100) == []
    assert MOVE_SENTENCE in newest


def test_empty_week_and_refused_account_are_recommended_on(sessions, vault, settings) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    with sessions() as session, session.begin():
        account = session.scalar(select(PlatformAccount).where(PlatformAccount.platform == "linkedin"))
        assert account is not None
        account.status = AccountStatus.NEEDS_REAUTH

    entry = weekly_report_for_user(make_runtime(settings, sessions, vault), user, WEEK_END)

    assert entry.content["summary"] == "Week 2026-11-15 to 2026-11-22: no posts were scheduled."
    [reconnect, empty] = entry.content["recommendations"]
    assert reconnect.startswith("Reconnect your LinkedIn account")
    assert empty.startswith("No posts were scheduled this week")


def test_unknown_user_is_refused(sessions, vault, settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        weekly_report_for_user(make_runtime(settings, sessions, vault), 4242, WEEK_END)
    assert insights(sessions) == []


@pytest.fixture
def outbox() -> Iterator[tuple[list[Mail], int]]:
    """A local SMTP server on a real socket: the mails it received, and its port."""
    with running_smtp() as (state, port):
        yield state.mails, port


def test_report_is_emailed_once_when_smtp_is_configured(sessions, vault, settings, outbox) -> None:  # type: ignore[no-untyped-def]
    mails, port = outbox
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    seed_week(sessions, user)
    runtime = make_runtime(dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=port,
                                               smtp_starttls=False), sessions, vault)

    weekly_report_for_user(runtime, user, WEEK_END)
    weekly_report_for_user(runtime, user, WEEK_END)

    [mail] = mails
    assert mail.recipients == ["ada@example.com"]
    assert mail.message["Subject"] == "Your weekly content report: 15 Nov - 21 Nov 2026"
    body = mail.message.get_payload(decode=True).decode()
    assert MOVE_SENTENCE in body and body.startswith("Week 2026-11-15")
    assert audit_actions(sessions) == ["report.created", "report.sent", "report.updated"]


def test_no_email_without_smtp(sessions, vault, settings, outbox) -> None:  # type: ignore[no-untyped-def]
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    assert settings.smtp_host is None

    weekly_report_for_user(make_runtime(settings, sessions, vault), user, WEEK_END)

    assert outbox[0] == []
    assert "report.sent" not in audit_actions(sessions)


def test_applying_advice_changes_the_setting_once_and_the_next_report_judges_it(
        settings: Settings, sessions: sessionmaker[Session], vault: TokenVault) -> None:
    from app.advice import apply_change
    from app.errors import ValidationError
    from app.models import UserSettings

    runtime = make_runtime(settings, sessions, vault)
    user_id = make_user(sessions, vault, posting_times=POSTING_TIMES)
    seed_week(sessions, user_id)
    entry = weekly_report_for_user(runtime, user_id, WEEK_END)
    [change] = [c for c in entry.content["changes"] if c["setting"] == "posting_time"]
    assert change["sentence"] == MOVE_SENTENCE
    index = entry.content["changes"].index(change)
    applied_at = WEEK_END + timedelta(hours=1)
    with sessions.begin() as session:
        apply_change(session, user_id, entry.key, index, now=applied_at, actor="user:ada")
    with sessions() as session:
        row = session.scalars(select(UserSettings).where(UserSettings.user_id == user_id)).one()
        assert row.posting_times["twitter"] == ["17:00"]
        actions = session.scalars(select(AuditLog.action).where(AuditLog.user_id == user_id)).all()
        assert {"user.updated", "advice.applied"} <= set(actions)
    with sessions.begin() as session, pytest.raises(ValidationError, match="applied already"):
        apply_change(session, user_id, entry.key, index, now=applied_at, actor="user:ada")
    with sessions.begin() as session, pytest.raises(NotFound):
        apply_change(session, user_id + 1, entry.key, index, now=applied_at, actor="user:eve")

    # The week after: posts at the new time engage 4 %; the report says the change helped.
    with sessions.begin() as session:
        for day in (23, 24):
            add_post(session, user_id, datetime(2026, 11, day, 16, 0, tzinfo=UTC), rate=0.04)
        session.execute(AuditLog.__table__.update().where(AuditLog.action == "advice.applied")
                        .values(created_at=applied_at))
    following = weekly_report_for_user(runtime, user_id, WEEK_END + timedelta(days=7))
    [sentence] = following.content["applied_advice"]
    assert sentence.startswith("You applied the advice of 22 Nov (moving your X posting time from 09:00 to 17:00)")
    assert "it helped" in sentence


def test_the_emails_best_posts_are_named_by_the_platforms_display_name(sessions, vault, settings, outbox) -> None:  # type: ignore[no-untyped-def]
    mails, port = outbox
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    seed_week(sessions, user)
    runtime = make_runtime(dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=port,
                                               smtp_starttls=False), sessions, vault)

    weekly_report_for_user(runtime, user, WEEK_END)

    [mail] = mails
    body = mail.message.get_payload(decode=True).decode()
    lines = body.splitlines()
    start = lines.index("Best posts by engagement rate:") + 1
    best = lines[start:lines.index("", start) if "" in lines[start:] else None]
    assert best and all(line.startswith(("- X 2026-", "- LinkedIn 2026-")) for line in best), best


def test_bluesky_and_mastodon_posts_count_by_interactions_in_the_stored_report_and_the_email(
        sessions, vault, settings, outbox) -> None:  # type: ignore[no-untyped-def]
    """Their providers store 0 impressions with likes, reposts and replies: the report counts
    them, never gives them a 0 % rate, and ranks them by interactions."""
    mails, port = outbox
    user = make_user(sessions, vault, posting_times=POSTING_TIMES)
    seed_week(sessions, user)
    with sessions.begin() as session:
        for day, platform, likes, reposts, replies in ((16, "bluesky", 9, 3, 2), (17, "bluesky", 4, 0, 1),
                                                       (18, "mastodon", 6, 2, 0)):
            at = datetime(2026, 11, day, 12, 0, tzinfo=UTC)
            session.add(Post(user_id=user, platform=platform, text=f"open post {day}", status=PostStatus.PUBLISHED,
                             scheduled_at=at, published_at=at, external_id=f"{platform}-{day}", impressions=0,
                             likes=likes, shares=reposts, comments=replies, engagement_rate=0.0,
                             metrics_updated_at=at + timedelta(days=1)))
    runtime = make_runtime(dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=port,
                                               smtp_starttls=False), sessions, vault)

    content = weekly_report_for_user(runtime, user, WEEK_END).content

    assert content["by_platform"]["bluesky"] == {"posts": 2, "impressions": 0, "interactions": 19,
                                                 "interactions_per_post": 9.5, "rated_posts": 0,
                                                 "engagement_rate": None}
    assert content["by_platform"]["mastodon"]["interactions"] == 8
    # The rate stays X's alone (2 % and 5 %, twice each); interactions count every platform.
    assert content["trend"]["current"]["engagement_rate"] == pytest.approx(0.035)
    assert content["trend"]["current"]["interactions"] == 140 + 27
    assert {p["platform"] for p in content["top"] + content["bottom"]} == {"twitter"}
    assert [p["excerpt"] for p in content["top_by_interactions"]] == ["open post 16", "open post 18", "open post 17"]
    assert not any(" 0.0%" in s or "Bluesky" in s or "Mastodon" in s for s in content["recommendations"])
    assert "Bluesky and Mastodon report no impressions" in content["summary"]
    [mail] = mails
    lines = mail.message.get_payload(decode=True).decode().splitlines()
    most = lines[lines.index("Most interactions where no impressions are reported:") + 1:]
    assert most[0] == "- Bluesky 2026-11-16: 14 interactions (likes, reposts, replies). open post 16"
    assert len(most) == 3
