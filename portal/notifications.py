"""The user's notifications (what needs them), the unread count in the navigation, and how each
kind reaches their inbox (:mod:`app.notifications` holds the rules)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from app.clock import utcnow
from app.errors import ValidationError
from app.models import Notification
from app.notifications import (
    EMAIL_CHOICES,
    USER_KINDS,
    mark_read,
    preferences,
    set_preferences,
    unread_count,
)
from portal.auth import current_actor, login_required
from portal.ext import db_session

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

NAV = ("Notifications", "notifications.index")

#: Notifications listed on the page, newest first.
PAGE_SIZE = 100


def init_app(app: Flask) -> None:
    @app.context_processor
    def _unread() -> dict[str, Any]:
        if g.get("user") is None:
            return {}
        return {"unread_notifications": unread_count(db_session(), g.user.id)}


@bp.route("/")
@login_required
def index() -> str:
    rows = db_session().scalars(
        select(Notification).where(Notification.user_id == g.user.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(PAGE_SIZE)).all()
    return render_template("portal/notifications.html", notifications=rows, kinds=USER_KINDS,
                           zone=g.user.settings.timezone or "UTC")


@bp.route("/read", methods=["POST"])
@login_required
def read() -> Any:
    """Mark one notification (form field ``notification_id``) or, without it, all of them read."""
    raw = request.form.get("notification_id")
    ids = None
    if raw:
        try:
            ids = [int(raw)]
        except ValueError:
            ids = []
    changed = mark_read(db_session(), g.user.id, utcnow(), ids)
    db_session().commit()
    if ids is None:
        flash(f"{changed} notification{'' if changed == 1 else 's'} marked read.", "success")
    return redirect(url_for("notifications.index"))


@bp.route("/preferences", methods=["GET", "POST"])
@login_required
def preferences_page() -> Any:
    db = db_session()
    errors: list[str] = []
    if request.method == "POST":
        choices = {kind: request.form.get(f"email_{kind}", "") for kind in USER_KINDS}
        try:
            set_preferences(db, g.user.id, choices, weekly_report_email=request.form.get("weekly_report_email") == "on",
                            actor=current_actor())
        except ValidationError as exc:
            db.rollback()
            errors = [f"{e.field}: {e.reason}" for e in exc.errors]
            flash("Not saved: " + "; ".join(errors), "error")
        else:
            db.commit()
            flash("Notification preferences saved.", "success")
            return redirect(url_for("notifications.preferences_page"))
    prefs = preferences(db, g.user.id)
    return render_template("portal/notification_preferences.html", kinds=USER_KINDS, choices=EMAIL_CHOICES,
                           chosen=prefs.email_by_kind or {}, weekly=prefs.weekly_report_email), (400 if errors else 200)
