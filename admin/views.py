"""The admin's model views and where each is mounted.

URLs (all behind operator login) when the admin runs alone; mounted under ``/admin`` in the
Procfile's ``web`` app the views sit at the mounted app's root, so the same URLs hold there:

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

from flask import Flask, flash
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from markupsafe import Markup
from sqlalchemy.orm import Session, scoped_session
from wtforms.form import BaseForm

from admin._compat import BaseSQLAFilter, FilterEqual
from admin.auth import VIEWS_URL_KEY, current_actor
from admin.base import (
    ReadOnlyModelView,
    SecuredModelView,
    compact_json,
    format_json,
    format_utc,
    link,
    post_time,
    short,
    truncate,
    user_link,
)
from admin.dashboard import DashboardView, needs_reauth
from admin.filters import utc_time_filters
from admin.reports import WeeklyReportView
from admin.review import ReviewQueueView
from admin.users import UserView
from app.clock import utcnow
from app.errors import AutopilotError, ValidationError
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
from app.ops.stats import per_user_row
from app.platforms import KNOWN_PLATFORMS
from app.posts import why_late
from app.providers.sandbox import is_sandbox_id
from app.users import set_account_status
from app.websecurity import csp_nonce

#: Columns of PlatformAccount no view may list, show, edit, search, filter or export.
SECRET_COLUMNS = frozenset({"access_token_encrypted", "refresh_token_encrypted"})


def _choices(values: Any) -> list[tuple[str, str]]:
    return [(str(v), str(v)) for v in values]


def _expiry(view: Any, context: Any, account: PlatformAccount, name: str) -> Markup | str:
    value = getattr(account, name)
    if value is None:
        return ""
    text = format_utc(value)
    if value <= utcnow():
        return Markup('{} <span class="badge badge-warning">expired</span>').format(text)
    return text


def _account_status(view: Any, context: Any, account: PlatformAccount, name: str) -> Markup | str:
    """The status, flagged when the token is dead although the status still says active."""
    now = utcnow()
    dead = (account.status == AccountStatus.ACTIVE and account.expires_at is not None and account.expires_at <= now
            and (account.refresh_token_encrypted is None
                 or (account.refresh_expires_at is not None and account.refresh_expires_at <= now)))
    if dead:
        return Markup('{} <span class="badge badge-danger">needs re-authorisation</span>').format(account.status)
    return account.status


def _refresh(view: Any, context: Any, account: PlatformAccount, name: str) -> str:
    """Whether the account can renew its access token (never the token itself)."""
    if account.refresh_token_encrypted is None:
        return "no"
    if account.refresh_expires_at is not None and account.refresh_expires_at <= utcnow():
        return "expired"
    return "yes"


class NeedsReauthFilter(BaseSQLAFilter):
    """Accounts marked needs_reauth, or whose token expired with no way to refresh it."""

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        clause = needs_reauth(utcnow())
        return query.filter(clause if value == "yes" else ~clause)

    def operation(self) -> str:
        return "is"


class PlatformAccountView(SecuredModelView):
    """``/admin/accounts/``: who is connected where, and whose token needs re-authorising.

    Every column list is an allow-list, so a column added to the model later stays hidden
    until someone decides to show it; tokens are absent from all of them (decision 6). The
    "can refresh" column says whether a refresh token exists, never what it is.
    """

    column_list = ("id", "user", "platform", "handle", "status", "expires_at", "can_refresh",
                   "reauth_notified_at", "updated_at")
    column_details_list = ("id", "user", "platform", "handle", "external_id", "status", "expires_at",
                           "can_refresh", "refresh_expires_at", "reauth_notified_at", "created_at", "updated_at")
    column_export_list = ("id", "user", "platform", "handle", "status", "expires_at", "can_refresh",
                          "refresh_expires_at", "reauth_notified_at", "updated_at")
    column_labels = {"expires_at": "Token expires", "can_refresh": "Can refresh",
                     "refresh_expires_at": "Refresh expires", "reauth_notified_at": "Re-auth notified"}
    column_searchable_list = ("handle",)
    column_sortable_list = ("id", "platform", "handle", "status", "expires_at", "updated_at")
    column_filters = (
        FilterEqual(PlatformAccount.platform, "Platform", options=_choices(KNOWN_PLATFORMS)),
        FilterEqual(PlatformAccount.status, "Status", options=_choices(AccountStatus)),
        NeedsReauthFilter(PlatformAccount.status, "Needs re-authorisation", options=[("yes", "yes"), ("no", "no")]),
    )
    column_formatters = {"user": user_link, "expires_at": _expiry, "refresh_expires_at": _expiry,
                         "can_refresh": _refresh, "status": _account_status}
    column_formatters_export = {"user": lambda v, c, m, n: m.user.email, "can_refresh": _refresh}
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
                raise AutopilotError(f"{type(self).__name__}.{name} exposes {sorted(leaked)}")

    def update_model(self, form: BaseForm, model: PlatformAccount) -> bool:
        """Only the status, through app.users: audited with the old status, and only if it changed."""
        try:
            if set_account_status(self.session, model, form.status.data or "", actor=current_actor()):
                self.session.commit()
            else:
                flash("Status unchanged: nothing was written.", "info")
        except ValidationError as exc:
            self.session.rollback()
            flash(f"Not saved. {exc}", "error")
            return False
        return True


def _external_id(view: Any, context: Any, post: Post, name: str) -> Markup | str:
    """Sandbox ids are labelled, so nobody looks for a simulated post on the real platform."""
    value = post.external_id or ""
    if is_sandbox_id(value):
        return Markup('<span class="badge badge-secondary">sandbox (simulated)</span> <small>{}</small>').format(value)
    return short(value, 24)


def _late(view: Any, context: Any, post: Post, name: str) -> str:
    """Why a post is past its time and not out (waiting for its message, being recovered,
    reconciling...), and since when: the same words as ``autopilot posts list``."""
    late = why_late(post, utcnow())
    return f"{late[0]}, since {late[1]:%Y-%m-%d %H:%M:%S} UTC" if late else ""


def _status(view: Any, context: Any, post: Post, name: str) -> Markup:
    """The status, and under it why the post waits for review or is late: one column, so the
    list fits a 1366-px screen."""
    why = post.review_reason.value if post.review_reason else _late(view, context, post, name)
    if not why:
        return Markup("{}").format(post.status.value)
    return Markup('{}<br><small class="text-muted">{}</small>').format(post.status.value, why)


class PostView(ReadOnlyModelView):
    """``/admin/posts/``: every post. Changes go through the review queue (app.posts)."""

    column_list = ("id", "user", "platform", "status", "scheduled_at", "published_at", "external_id", "text")
    column_details_list = ("id", "user", "platform", "status", "late_reason", "origin", "topic", "scheduled_at",
                           "slot_at", "queued_at", "publish_started_at", "published_at", "external_id",
                           "attempts", "review_reason", "last_error", "impressions", "likes", "shares",
                           "comments", "engagement_rate", "metrics_updated_at", "execution_id", "created_at",
                           "updated_at", "text")
    column_labels = {"user.email": "User email", "scheduled_at": "Scheduled", "published_at": "Published",
                     "review_reason": "Reason", "external_id": "External id", "late_reason": "Late (why, since)"}
    column_sortable_list = ("id", "platform", "status", "scheduled_at", "published_at", "attempts")
    column_default_sort = ("scheduled_at", True)
    column_searchable_list = ("text", "topic")
    column_filters = (
        FilterEqual(Post.status, "Status", options=_choices(PostStatus)),
        FilterEqual(Post.platform, "Platform", options=_choices(KNOWN_PLATFORMS)),
        "user.email",
        "origin",
        *utc_time_filters(Post.scheduled_at, "Scheduled (UTC)"),
    )
    column_formatters = {"external_id": _external_id, "text": truncate(90), "user": user_link,
                         "scheduled_at": post_time, "published_at": post_time, "status": _status}
    column_formatters_detail = {
        "external_id": _external_id, "user": user_link, "late_reason": _late,
        "scheduled_at": post_time, "published_at": post_time, "slot_at": post_time,
        "text": lambda v, c, m, n: Markup('<div class="post-text">{}</div>').format(m.text),
    }


def _work_name(view: Any, context: Any, model: WorkflowExecution, name: str) -> str:
    return per_user_row(model.workflow) if model.user_id is not None else model.workflow


class WorkflowExecutionView(ReadOnlyModelView):
    """``/admin/executions/``: newest first; a failed run shows its error."""

    column_list = ("id", "workflow", "user", "slot", "status", "created_at", "finished_at",
                   "duration_ms", "error")
    column_details_list = ("id", "workflow", "user", "slot", "status", "created_at", "started_at",
                           "finished_at", "duration_ms", "attempts", "claimed_by", "counts", "error")
    column_labels = {"duration_ms": "ms", "created_at": "Created", "finished_at": "Finished",
                     "user.email": "User email"}
    column_sortable_list = ("id", "workflow", "status", "created_at", "duration_ms")
    column_default_sort = ("created_at", True)
    column_filters = (
        FilterEqual(WorkflowExecution.status, "Status", options=_choices(ExecutionStatus)),
        "workflow",
        "user.email",
        *utc_time_filters(WorkflowExecution.created_at, "Created (UTC)"),
    )
    # Named as on the Operations page: "daily_generation per user" (the job's row is its slots).
    column_formatters = {"error": truncate(80), "user": user_link, "workflow": _work_name}
    column_formatters_detail = {"counts": format_json, "user": user_link, "workflow": _work_name,
                                "error": lambda v, c, m, n: Markup("<pre>{}</pre>").format(m.error or "")}


class JobRunView(ReadOnlyModelView):
    """``/admin/jobs/``: one row per claimed (job, slot); a gap means a slot that never ran."""

    column_list = ("id", "job", "slot", "trigger", "status", "claimed_at", "finished_at", "fanned_out", "error")
    column_default_sort = ("claimed_at", True)
    column_filters = ("job", "status", "trigger", *utc_time_filters(JobRun.slot, "Slot (UTC)"))
    column_formatters = {"error": truncate(80)}
    column_formatters_detail = {"error": lambda v, c, m, n: Markup("<pre>{}</pre>").format(m.error or "")}


def _post_link(view: Any, context: Any, row: AuditLog, name: str) -> Markup | str:
    return link("posts", row.post_id, f"post {row.post_id}")


class AuditLogView(ReadOnlyModelView):
    """``/admin/audit/``: who did what to which user and post, newest first."""

    column_list = ("id", "created_at", "actor", "action", "user", "post", "details")
    column_details_list = column_list
    column_labels = {"created_at": "When", "user.email": "User email"}
    column_default_sort = ("created_at", True)
    column_sortable_list = ("id", "created_at", "actor", "action")
    column_filters = (
        "action",
        "actor",
        "user.email",
        FilterEqual(AuditLog.user_id, "User id"),
        FilterEqual(AuditLog.post_id, "Post id"),
        *utc_time_filters(AuditLog.created_at, "When (UTC)"),
    )
    column_searchable_list = ("action", "actor")
    column_formatters = {"details": compact_json(70), "user": user_link, "post": _post_link}
    column_formatters_detail = {"details": format_json, "user": user_link, "post": _post_link}


class NotificationView(ReadOnlyModelView):
    """``/admin/notifications/``: what users were told, and whether it was emailed."""

    column_list = ("id", "user", "kind", "severity", "subject", "created_at", "emailed_at", "read_at")
    column_details_list = (*column_list, "body")
    column_default_sort = ("created_at", True)
    column_filters = ("kind", "severity", "user.email")
    column_labels = {"user.email": "User email"}
    column_searchable_list = ("subject",)
    column_formatters = {"user": user_link, "subject": truncate(70)}
    column_formatters_detail = {"user": user_link,
                                "body": lambda v, c, m, n: Markup('<div class="post-text">{}</div>').format(m.body)}


def init_admin(app: Flask, db: scoped_session[Session]) -> Admin:
    """Mount the panel on ``app`` with views bound to the app's scoped session.

    The views sit under ``app.config["ADMIN_VIEWS_URL"]``: ``/admin`` when the admin runs alone
    (its root redirects there), ``""`` when it is itself mounted under ``/admin`` in the
    Procfile's ``web`` app, so that operators read ``/admin/users/`` and not ``/admin/admin/users/``.
    """
    base = app.config[VIEWS_URL_KEY]
    admin = Admin(
        app,
        name="Content Autopilot",
        index_view=DashboardView(name="Dashboard", url=base or "/"),
        theme=Bootstrap4Theme(base_template="autopilot/master.html"),
        csp_nonce_generator=csp_nonce,
    )
    admin.add_view(UserView(User, db, name="Users", endpoint="users", url=f"{base}/users"))
    admin.add_view(PlatformAccountView(PlatformAccount, db, name="Accounts", endpoint="accounts",
                                       url=f"{base}/accounts"))
    admin.add_view(PostView(Post, db, name="Posts", endpoint="posts", url=f"{base}/posts", category="Posts"))
    admin.add_view(ReviewQueueView(Post, db, name="Review queue", endpoint="review", url=f"{base}/review",
                                   category="Posts"))
    admin.add_view(WorkflowExecutionView(WorkflowExecution, db, name="Executions", endpoint="executions",
                                         url=f"{base}/executions", category="History"))
    admin.add_view(JobRunView(JobRun, db, name="Job runs", endpoint="jobs", url=f"{base}/jobs",
                              category="History"))
    admin.add_view(AuditLogView(AuditLog, db, name="Audit log", endpoint="audit", url=f"{base}/audit",
                                category="History"))
    admin.add_view(NotificationView(Notification, db, name="Notifications", endpoint="notifications",
                                    url=f"{base}/notifications", category="History"))
    admin.add_view(WeeklyReportView(MemoryEntry, db, name="Weekly reports", endpoint="reports",
                                    url=f"{base}/reports"))
    return admin
