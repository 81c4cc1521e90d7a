"""The weekly reports archive: each week's report as a page (what the email says), newest first.

A recommendation that changes a setting has an "apply" button: :func:`app.advice.apply_change`
makes the change through the settings' own validation, audited; the next report says whether
it helped. Reports are fetched by the signed-in user's id and the week's date only.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from app.advice import apply_change, report_entry
from app.clock import utcnow
from app.errors import NotFound, ValidationError
from app.models import MemoryEntry
from app.platforms import display_name, reports_impressions
from app.workflows.report import INSIGHT_KIND
from portal.auth import current_actor, login_required
from portal.ext import db_session

bp = Blueprint("reports", __name__, url_prefix="/reports")

NAV = ("Reports", "reports.index")

#: Reports listed on the archive page (two years of weeks).
ARCHIVE_SIZE = 104


def _key(day: str) -> str:
    try:
        return f"weekly:{date.fromisoformat(day).isoformat()}"
    except ValueError:
        abort(404)


@bp.route("/")
@login_required
def index() -> str:
    rows = db_session().execute(
        select(MemoryEntry.key, MemoryEntry.content)
        .where(MemoryEntry.user_id == g.user.id, MemoryEntry.kind == INSIGHT_KIND, MemoryEntry.key.like("weekly:%"))
        .order_by(MemoryEntry.key.desc()).limit(ARCHIVE_SIZE)).all()
    reports = [{"day": key.split(":", 1)[1], "summary": (content or {}).get("summary", ""),
                "recommendations": len((content or {}).get("recommendations") or [])} for key, content in rows]
    return render_template("portal/reports.html", reports=reports)


@bp.route("/<day>")
@login_required
def detail(day: str) -> str:
    try:
        entry = report_entry(db_session(), g.user.id, _key(day))
    except NotFound:
        abort(404)
    content = entry.content or {}
    changes = {c.get("sentence"): (i, c) for i, c in enumerate(content.get("changes") or [])}
    return render_template("portal/report.html", day=day, content=content, changes=changes,
                           platform_name=display_name, reports_impressions=reports_impressions)


@bp.route("/<day>/apply", methods=["POST"])
@login_required
def apply(day: str) -> Any:
    """Apply one of the report's setting changes (form field ``change``: its index)."""
    db = db_session()
    try:
        index = int(request.form.get("change", ""))
    except ValueError:
        abort(400, "change must be the index of one of the report's changes")
    try:
        change = apply_change(db, g.user.id, _key(day), index, now=utcnow(), actor=current_actor())
    except NotFound:
        db.rollback()
        abort(404)
    except ValidationError as exc:
        db.rollback()
        flash("Not applied: " + "; ".join(f"{e.reason}" for e in exc.errors), "error")
        return redirect(url_for("reports.detail", day=day))
    db.commit()
    flash(f"Applied: {change['sentence'].split(':')[0]}. Next week's report will say whether it helped.", "success")
    return redirect(url_for("reports.detail", day=day))
