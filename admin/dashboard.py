"""The admin home page: what an operator should look at first.

The counts are computed by :func:`dashboard_counts`, a plain function over a session, so the
page is a thin rendering of numbers that are tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import url_for
from flask_admin import AdminIndexView, expose
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from admin.auth import OperatorRequired
from admin.ext import db_session
from admin.filters import filter_time, filtered_list_url
from app.models import (
    AccountStatus,
    ExecutionStatus,
    PlatformAccount,
    Post,
    PostStatus,
    WorkflowExecution,
    utcnow,
)

#: How far back the dashboard counts failed workflow executions.
FAILED_EXECUTIONS_WINDOW = timedelta(hours=24)


def needs_reauth(now: datetime) -> ColumnElement[bool]:
    """Accounts a person must re-authorise: marked so, or whose token expired with no way to
    refresh it (no refresh token, or an expired one). Shared by the dashboard and the filter."""
    return or_(
        PlatformAccount.status == AccountStatus.NEEDS_REAUTH,
        and_(
            PlatformAccount.status == AccountStatus.ACTIVE,
            PlatformAccount.expires_at <= now,
            or_(PlatformAccount.refresh_token_encrypted.is_(None), PlatformAccount.refresh_expires_at <= now),
        ),
    )


@dataclass(frozen=True)
class DashboardCounts:
    day: str
    #: (status, count) of posts scheduled during the current UTC day, most common first.
    posts_today: list[tuple[str, int]]
    failed_executions: int
    review_queue: int
    accounts_reauth: int


def dashboard_counts(session: Session, now: datetime) -> DashboardCounts:
    """The dashboard's figures at ``now`` (an aware instant; "today" is the UTC day)."""
    start = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    by_status = session.execute(
        select(Post.status, func.count())
        .where(Post.scheduled_at >= start, Post.scheduled_at < end)
        .group_by(Post.status)
        .order_by(func.count().desc(), Post.status)
    ).all()
    failed = session.scalar(
        select(func.count())
        .select_from(WorkflowExecution)
        .where(
            WorkflowExecution.status == ExecutionStatus.FAILED,
            WorkflowExecution.created_at >= now - FAILED_EXECUTIONS_WINDOW,
        )
    )
    review = session.scalar(
        select(func.count()).select_from(Post).where(Post.status == PostStatus.NEEDS_REVIEW)
    )
    reauth = session.scalar(
        select(func.count())
        .select_from(PlatformAccount)
        .where(needs_reauth(now))
    )
    return DashboardCounts(
        day=start.date().isoformat(),
        posts_today=[(status, count) for status, count in by_status],
        failed_executions=failed or 0,
        review_queue=review or 0,
        accounts_reauth=reauth or 0,
    )


class DashboardView(OperatorRequired, AdminIndexView):
    """``/admin/``: today's posts by status and the queues that need a human."""

    @expose("/")
    def index(self) -> str:
        now = utcnow()
        counts = dashboard_counts(db_session(), now)
        return self.render("autopilot/dashboard.html", links=self._links(counts, now), **counts.__dict__)

    def _links(self, counts: DashboardCounts, now: datetime) -> dict[str, Any]:
        """Each figure's link opens the list it counts, filtered the same way."""
        views = {view.endpoint: view for view in self.admin._views}
        start = datetime.fromisoformat(counts.day).replace(tzinfo=UTC)
        day = f"{filter_time(start)} to {filter_time(start + timedelta(days=1) - timedelta(seconds=1))}"
        return {
            "review": url_for("review.index_view"),
            "failed": filtered_list_url(views["executions"], [
                ("Status", "equals", ExecutionStatus.FAILED),
                ("Created (UTC)", "greater than", filter_time(now - FAILED_EXECUTIONS_WINDOW)),
            ]),
            "reauth": filtered_list_url(views["accounts"], [("Needs re-authorisation", "is", "yes")]),
            "posts_today": {
                status: filtered_list_url(views["posts"], [("Status", "equals", status),
                                                           ("Scheduled (UTC)", "between", day)])
                for status, _ in counts.posts_today
            },
        }
