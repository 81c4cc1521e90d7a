"""The admin's model views and where each is mounted.

URLs (all behind operator login):

=====================  ==========================================================
``/admin/``            dashboard
``/admin/users/``      users and their settings (validated by app.validation)
``/admin/accounts/``   platform accounts; token columns are never rendered
``/admin/posts/``      every post, filterable, sortable by scheduled time
``/admin/review/``     the review queue: approve, approve now, edit & reschedule, cancel
``/admin/executions/`` workflow executions (read-only)
``/admin/jobs/``       periodic job runs (read-only)
``/admin/audit/``      audit log (read-only)
``/admin/notifications/`` notifications to users (read-only)
``/admin/reports/``    weekly reports (read-only)
=====================  ==========================================================
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from markupsafe import Markup
from sqlalchemy.orm import Session, scoped_session
from wtforms.form import BaseForm

from admin._compat import FilterEqual
from admin.auth import current_actor
from admin.base import ReadOnlyModelView, SecuredModelView, format_json, truncate
from admin.dashboard import DashboardView
from admin.reports import WeeklyReportView
from admin.review import ReviewQueueView
from admin.users import UserView
from app.audit import record
from app.clock import utcnow
from app.lifecycle import why_late
from app.models import (
    AccountStatus,
    AuditLog,
    ExecutionStatus,
    JobRun,
    MemoryEntry,
    Notification,
    PlatformAccount,
    Post,
    PostStatus,
    User,
    WorkflowExecution,
)
from app.platforms import KNOWN_PLATFORMS
from app.providers.sandbox import is_sandbox_id

#: Columns of PlatformAccount no view may list, show, edit, search, filter or export.
SECRET_COLUMNS = frozenset({"access_token_encrypted", "refresh_token_encrypted"})


def _choices(values: Any) -> list[tuple[str, str]]:
    return [(str(v), str(v)) for v in values]


class PlatformAccountView(SecuredModelView):
    """``/admin/accounts/``: who is connected where, and whose token needs re-authorising.

    Every column list is an allow-list, so a column added to the model later stays hidden
    until someone decides to show it; tokens are absent from all of them (decision 6).
    """

    column_list = ("id", "user", "platform", "handle", "status", "expires_at",
                   "refresh_expires_at", "reauth_notified_at", "updated_at")
    column_details_list = (*column_list, "external_id", "created_at")
    column_export_list = column_list
    column_searchable_list = ("handle",)
    column_sortable_list = ("id", "platform", "handle", "status", "expires_at", "updated_at")
    column_filters = (
        FilterEqual(PlatformAccount.platform, "Platform", options=_choices(KNOWN_PLATFORMS)),
        FilterEqual(PlatformAccount.status, "Status", options=_choices(AccountStatus)),
    )
    column_default_sort = ("expires_at", False)
    # Operators may only mark an account's status (e.g. revoked); tokens come from OAuth.
    form_columns = ("status",)
    form_choices = {"status": _choices(AccountStatus)}
    can_create = False
    can_delete = False
    can_export = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("column_list", "column_details_list", "column_export_list",
                     "column_searchable_list", "form_columns"):
            leaked = SECRET_COLUMNS.intersection(getattr(self, name) or ())
            if leaked:
                raise RuntimeError(f"{type(self).__name__}.{name} exposes {sorted(leaked)}")

    def on_model_change(self, form: BaseForm, model: PlatformAccount, is_created: bool) -> None:
        record(self.session, "account.status_changed", user_id=model.user_id, actor=current_actor(),
               details={"platform": model.platform, "status": model.status})


def _external_id(view: Any, context: Any, post: Post, name: str) -> Markup | str:
    """Sandbox ids are labelled, so nobody looks for a simulated post on the real platform."""
    value = post.external_id or ""
    if is_sandbox_id(value):
        return Markup('<span class="badge badge-secondary">sandbox (simulated)</span> <small>{}</small>').format(value)
    return value


def _late(view: Any, context: Any, post: Post, name: str) -> str:
    """Why a post is past its time and not out (waiting for its message, being recovered,
    reconciling...), and since when: the same words as ``autopilot posts list``."""
    late = why_late(post, utcnow())
    return f"{late[0]}, since {late[1]:%Y-%m-%d %H:%M:%S} UTC" if late else ""


class PostView(ReadOnlyModelView):
    """``/admin/posts/``: every post. Changes go through the review queue (app.posts)."""

    column_list = ("id", "user", "platform", "status", "late_reason", "scheduled_at", "published_at",
                   "external_id", "attempts", "review_reason", "text")
    column_sortable_list = ("id", "platform", "status", "scheduled_at", "published_at", "attempts")
    column_default_sort = ("scheduled_at", True)
    column_searchable_list = ("text", "topic")
    column_filters = (
        FilterEqual(Post.status, "Status", options=_choices(PostStatus)),
        FilterEqual(Post.platform, "Platform", options=_choices(KNOWN_PLATFORMS)),
        "user.email",
        "origin",
    )
    column_labels = {"user.email": "User email", "late_reason": "Late (why, since)"}
    column_formatters = {"external_id": _external_id, "text": truncate(100), "late_reason": _late}
    column_formatters_detail = {"external_id": _external_id, "late_reason": _late}


class WorkflowExecutionView(ReadOnlyModelView):
    """``/admin/executions/``: newest first; a failed run shows its error."""

    column_list = ("id", "workflow", "user", "slot", "status", "created_at", "started_at",
                   "finished_at", "duration_ms", "error")
    column_sortable_list = ("id", "workflow", "status", "created_at", "duration_ms")
    column_default_sort = ("created_at", True)
    column_filters = (
        FilterEqual(WorkflowExecution.status, "Status", options=_choices(ExecutionStatus)),
        "workflow",
        "user.email",
    )
    column_labels = {"user.email": "User email"}
    column_formatters = {"error": truncate(200), "counts": format_json}


class JobRunView(ReadOnlyModelView):
    """``/admin/jobs/``: one row per claimed (job, slot); a gap means a slot that never ran."""

    column_default_sort = ("claimed_at", True)
    column_filters = ("job", "status", "trigger")
    column_formatters = {"error": truncate(200)}


class AuditLogView(ReadOnlyModelView):
    """``/admin/audit/``: who did what, newest first."""

    column_default_sort = ("created_at", True)
    column_filters = ("action", "actor", "user_id", "post_id")
    column_searchable_list = ("action", "actor")
    column_formatters = {"details": format_json}


class NotificationView(ReadOnlyModelView):
    """``/admin/notifications/``: what users were told, and whether it was emailed."""

    column_list = ("id", "user_id", "kind", "severity", "subject", "created_at", "emailed_at", "read_at")
    column_default_sort = ("created_at", True)
    column_filters = ("kind", "severity", "user_id")
    column_searchable_list = ("subject",)


def init_admin(app: Flask, db: scoped_session[Session]) -> Admin:
    """Mount the panel on ``app`` with views bound to the app's scoped session."""
    admin = Admin(
        app,
        name="Content Autopilot",
        index_view=DashboardView(name="Dashboard", url="/admin"),
        theme=Bootstrap4Theme(base_template="autopilot/master.html"),
    )
    admin.add_view(UserView(User, db, name="Users", endpoint="users", url="/admin/users"))
    admin.add_view(PlatformAccountView(PlatformAccount, db, name="Accounts", endpoint="accounts",
                                       url="/admin/accounts"))
    admin.add_view(PostView(Post, db, name="Posts", endpoint="posts", url="/admin/posts", category="Posts"))
    admin.add_view(ReviewQueueView(Post, db, name="Review queue", endpoint="review", url="/admin/review",
                                   category="Posts"))
    admin.add_view(WorkflowExecutionView(WorkflowExecution, db, name="Executions", endpoint="executions",
                                         url="/admin/executions", category="History"))
    admin.add_view(JobRunView(JobRun, db, name="Job runs", endpoint="jobs", url="/admin/jobs",
                              category="History"))
    admin.add_view(AuditLogView(AuditLog, db, name="Audit log", endpoint="audit", url="/admin/audit",
                                category="History"))
    admin.add_view(NotificationView(Notification, db, name="Notifications", endpoint="notifications",
                                    url="/admin/notifications", category="History"))
    admin.add_view(WeeklyReportView(MemoryEntry, db, name="Weekly reports", endpoint="reports",
                                    url="/admin/reports"))
    return admin
