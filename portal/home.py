"""The home page (what needs the user now, at a glance) and the load balancer's ``/healthz``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, render_template
from sqlalchemy import func, select

from app.models import Post, PostStatus
from portal.auth import login_required
from portal.ext import db_session

bp = Blueprint("home", __name__)

NAV = ("Home", "home.index")


@bp.route("/healthz")
def healthz() -> Any:
    """The process is alive and serving requests (nothing else is touched)."""
    return jsonify(status="ok")


@bp.route("/")
@login_required
def index() -> str:
    counts = dict(db_session().execute(
        select(Post.status, func.count()).where(
            Post.user_id == g.user.id,
            Post.status.in_((PostStatus.SCHEDULED, PostStatus.NEEDS_REVIEW, PostStatus.QUEUED)))
        .group_by(Post.status)).all())
    return render_template("portal/home.html", scheduled=counts.get(PostStatus.SCHEDULED, 0)
                           + counts.get(PostStatus.QUEUED, 0),
                           waiting=counts.get(PostStatus.NEEDS_REVIEW, 0), settings=g.user.settings)
