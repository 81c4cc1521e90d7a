"""A small, representative data set for the admin pages: every list has rows, long texts included.

Times are derived from ``now`` (the real clock at call time), so the pages look the same on any
day. Used by the real-browser tests; reusable by any admin page's test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.audit import record
from app.crypto import DEMO_KEY, TokenVault
from app.models import (
    AccountStatus,
    ExecutionStatus,
    JobRun,
    MemoryEntry,
    MetricSnapshot,
    Notification,
    PlatformAccount,
    Post,
    PostStatus,
    WorkflowExecution,
)
from app.users import create_user

_LESSONS = [
    "Seven lessons from shipping a scheduler:",
    "1. The database holds the schedule, not the broker.",
    "2. Claim a post before publishing it.",
    "3. Never retry an unknown outcome blindly.",
    "4. Catch up a missed slot once.",
    "5. Time zones are data.",
    "6. Audit every action.",
    "7. Measure lateness",
]
#: A multi-line X post of exactly 276 weighted characters with 7 line breaks ("\n"); sent by a
#: browser as "\r\n" it would weigh 283 and be refused, unless line endings are normalised.
MULTI_LINE_POST = "\n".join(_LESSONS).ljust(275, ".") + "!"
LONG_TEXT = ("A long LinkedIn post about reliable scheduling, retries, idempotency and observability. " * 6).strip()
LONG_ERROR = "httpx.ReadTimeout: timed out after the request was sent; " + "outcome unknown, reconciling. " * 8


@dataclass
class Seeded:
    ada: int
    grace: int
    published: int
    review_approve: int
    review_reschedule: int
    review_cancel: int
    report: int
    account_ok: int
    account_expired: int


def seed(sessions: sessionmaker[Session], now: datetime) -> Seeded:
    vault = TokenVault([DEMO_KEY])
    with sessions() as s, s.begin():
        ada = create_user(s, "ada@example.com", {
            "timezone": "Europe/Paris", "preferred_platforms": ["twitter", "linkedin"],
            "posting_times": {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]},
            "topics": ["python", "distributed systems"], "enable_autonomous_mode": True,
        }, name="Ada Lovelace", actor="test")
        grace = create_user(s, "grace.hopper.with.a.rather.long.address@example.com", {
            "timezone": "America/Los_Angeles", "preferred_platforms": ["linkedin"],
            "posting_times": {"linkedin": ["08:30"]}, "topics": ["compilers"], "require_approval": True,
        }, name="Grace", actor="test")
        ok = PlatformAccount(user_id=ada.id, platform="twitter", handle="@ada",
                             access_token_encrypted=vault.encrypt("seed-access"),
                             refresh_token_encrypted=vault.encrypt("seed-refresh"),
                             expires_at=now + timedelta(hours=2))
        expired = PlatformAccount(user_id=grace.id, platform="linkedin", handle="Grace Hopper",
                                  access_token_encrypted=vault.encrypt("seed-access-2"),
                                  expires_at=now - timedelta(days=1), status=AccountStatus.ACTIVE)
        s.add_all([ok, expired])

        def post(user_id: int, platform: str, text: str, status: str, at: datetime, **kw: object) -> Post:
            p = Post(user_id=user_id, platform=platform, text=text, status=status, scheduled_at=at, **kw)
            s.add(p)
            return p

        published = post(ada.id, "twitter", "Shipped: exactly-once publishing.", PostStatus.PUBLISHED,
                         now - timedelta(days=2), published_at=now - timedelta(days=2) + timedelta(seconds=1),
                         external_id="sandbox-1a2b3c4d5e6f", impressions=1200, likes=40, shares=5, comments=3,
                         engagement_rate=0.04, slot_at=now - timedelta(days=2), topic="python")
        post(grace.id, "linkedin", LONG_TEXT, PostStatus.SCHEDULED, now + timedelta(hours=5),
             slot_at=now + timedelta(hours=5), topic="compilers")
        post(ada.id, "linkedin", "A post that failed for good.", PostStatus.FAILED, now - timedelta(hours=3),
             last_error=LONG_ERROR, attempts=3, slot_at=now - timedelta(hours=3))
        approve = post(ada.id, "twitter", "Approve me: a short post.", PostStatus.NEEDS_REVIEW,
                       now + timedelta(hours=3), review_reason="approval", slot_at=now + timedelta(hours=3))
        reschedule = post(ada.id, "twitter", MULTI_LINE_POST, PostStatus.NEEDS_REVIEW, now + timedelta(hours=4),
                          review_reason="outcome_unknown", last_error=LONG_ERROR, slot_at=now + timedelta(hours=4))
        cancel = post(grace.id, "linkedin", "Cancel me: not worth publishing.", PostStatus.NEEDS_REVIEW,
                      now + timedelta(hours=6), review_reason="approval", slot_at=now + timedelta(hours=6))
        s.flush()
        s.add(MetricSnapshot(post_id=published.id, age="24h", impressions=1200, likes=40, shares=5, comments=3,
                             engagement_rate=0.04, simulated=True))
        s.add_all([
            WorkflowExecution(workflow="daily_generation", user_id=ada.id, slot=now - timedelta(hours=1),
                              status=ExecutionStatus.FAILED, created_at=now - timedelta(hours=1),
                              started_at=now - timedelta(hours=1), finished_at=now - timedelta(minutes=59),
                              duration_ms=812, error=LONG_ERROR),
            WorkflowExecution(workflow="weekly_report", user_id=grace.id, slot=now - timedelta(days=1),
                              status=ExecutionStatus.SUCCEEDED, created_at=now - timedelta(days=1),
                              duration_ms=120, counts={"posts": 3}),
            JobRun(job="daily_generation", slot=now - timedelta(hours=1), status="succeeded",
                   claimed_at=now - timedelta(hours=1), finished_at=now - timedelta(minutes=59), fanned_out=2),
            Notification(user_id=grace.id, kind="reauth", severity="warning",
                         subject="Reconnect your LinkedIn account: the platform refused its access token",
                         body="Your LinkedIn token expired.\nReconnect it to keep posting."),
        ])
        record(s, "post.published", user_id=ada.id, post_id=published.id, actor="autopilot",
               details={"external_id": published.external_id, "platform": "twitter"})
        report = MemoryEntry(user_id=ada.id, kind="insight", key="2026-W48", created_at=now - timedelta(hours=2),
                             content={
                                 "summary": "3 posts scheduled, 1 published on time; engagement 4.0%.",
                                 "period": {"start": (now - timedelta(days=7)).isoformat(), "end": now.isoformat()},
                                 "posts": {"scheduled": 3, "published": 1, "on_time": 1, "late": 0, "failed": 1,
                                           "reviewed": 1, "cancelled": 0, "pending": 0},
                                 "executions": {"succeeded": 5, "failed": 1, "success_rate": 5 / 6},
                                 "top": [{"post_id": published.id, "platform": "twitter", "topic": "python",
                                          "published_at": published.scheduled_at.isoformat(), "impressions": 1200,
                                          "interactions": 48, "engagement_rate": 0.04,
                                          "excerpt": published.text}],
                                 "bottom": [],
                                 "by_platform": {"twitter": {"posts": 1, "impressions": 1200, "interactions": 48,
                                                             "engagement_rate": 0.04}},
                                 "by_weekday": {}, "by_hour": {}, "trend": {"engagement_rate_change_pct": None},
                                 "recommendations": ["Post on X at 09:00 Europe/Paris: your best hour.",
                                                     "Reconnect your LinkedIn account."],
                             })
        s.add(report)
        s.flush()
        return Seeded(ada=ada.id, grace=grace.id, published=published.id, review_approve=approve.id,
                      review_reschedule=reschedule.id, review_cancel=cancel.id, report=report.id,
                      account_ok=ok.id, account_expired=expired.id)
