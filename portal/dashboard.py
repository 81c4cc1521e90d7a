"""The dashboard, the portal's home once signed in: how the user's posts did, and what is next.

Every figure comes from :func:`app.performance.dashboard` (the weekly report's arithmetic, on the
replica when ``DATABASE_REPLICA_URL`` is set) and links to the posts it counts:
``/dashboard/posts`` lists the signed-in user's posts matching a figure's filter. Charts are
drawn by :mod:`app.charts` with their numbers in a table beside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.charts import category_chart, format_value, grid_chart
from app.clock import utcnow
from app.connect.clients import connectable_platforms
from app.db import make_engine, make_session_factory
from app.models import Post, PostStatus
from app.performance import (
    DEFAULT_PERIOD_DAYS,
    PERIODS_DAYS,
    Dashboard,
    PostFilter,
    describe_account,
    post_records,
)
from app.performance import dashboard as build_dashboard
from app.platforms import display_name, reports_impressions
from app.report_math import WEEKDAYS, is_on_time, not_reported, platform_names
from portal.auth import login_required
from portal.ext import db_session, portal

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

#: Posts a figure's list shows at most (a 90-day period holds a few hundred).
MAX_LISTED = 500
#: The longest window a figure's list accepts.
MAX_LIST_WINDOW = timedelta(days=400)
#: The app extension holding the replica's session factory.
REPLICA_KEY = "portal_replica"


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for figures: on ``DATABASE_REPLICA_URL`` when set (they tolerate its lag),
    else the request's own session on the primary."""
    url = portal().settings.database_replica_url
    if not url:
        yield db_session()
        return
    factory: sessionmaker[Session] | None = current_app.extensions.get(REPLICA_KEY)
    if factory is None:
        factory = current_app.extensions[REPLICA_KEY] = make_session_factory(make_engine(url))
    with factory() as session:
        yield session


def page() -> str:
    """The dashboard for ``?days=`` (7, 30 or 90) of the signed-in user."""
    days = request.args.get("days", DEFAULT_PERIOD_DAYS, type=int)
    if days not in PERIODS_DAYS:
        days = DEFAULT_PERIOD_DAYS
    with read_session() as session:
        board = build_dashboard(session, g.user.id, utcnow(), days, timezone=g.user.settings.timezone or "UTC")
    waiting = db_session().scalar(select(func.count()).select_from(Post).where(
        Post.user_id == g.user.id, Post.status == PostStatus.NEEDS_REVIEW)) or 0
    return render_template("portal/dashboard.html", board=board, periods=PERIODS_DAYS, waiting=waiting,
                           settings=g.user.settings, charts=_charts(board), posts_link=posts_link,
                           reconnect_url=reconnect_url, unrated_names=platform_names(board.unrated),
                           format_value=format_value, describe_account=describe_account,
                           platform_name=display_name, local=_local, reports_impressions=reports_impressions)


def reconnect_url(platform: str) -> str:
    """Where "Reconnect" goes: the platform's consent screen (``accounts.connect``) for a platform
    connected by OAuth; else the accounts page, which shows the account and how it connects (an
    app password has no consent screen in the portal: its ``/connect/<platform>`` is a 404)."""
    if platform in connectable_platforms():
        return url_for("accounts.connect", platform=platform)
    return url_for("accounts.index")


def posts_link(counts: PostFilter) -> str:
    return url_for("dashboard.posts", **counts.as_query())


def _local(value: datetime, zone: str) -> str:
    moment = value.astimezone(ZoneInfo(zone))
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} {moment.tzname()}"


def _charts(board: Dashboard) -> dict[str, Any]:
    """The per-week charts and the heatmap. Impressions and rates are drawn for the platforms that
    report impressions only (a Bluesky line at 0 % would say its posts did nothing), and those
    charts say which platforms they leave out; interactions per post count every platform."""
    zone = ZoneInfo(board.timezone)
    labels = [f"{week.day} {week:%b}" for week in board.week_starts]
    platforms = sorted({p.platform for p in board.weeks})
    rated = [pl for pl in platforms if reports_impressions(pl)]
    # Platforms with measured posts in the charts' weeks but no impressions: left out of the rate charts.
    unrated = [pl for pl in platforms if not reports_impressions(pl)
               and any(p.stats.posts for p in board.weeks if p.platform == pl)]
    impressions = {display_name(pl): [p.stats.impressions if p.stats.rated_posts else None for p in board.weeks
                                      if p.platform == pl] for pl in rated}
    rates = {display_name(pl): [p.stats.engagement_rate for p in board.weeks if p.platform == pl]
             for pl in rated}
    per_post = {display_name(pl): [p.stats.interactions_per_post for p in board.weeks if p.platform == pl]
                for pl in platforms}
    # Each week's row links to the posts it counts (the week in the user's zone): the rated ones
    # for impressions and rates, every measured one for interactions.
    links, measured_links = {}, {}
    for i, week in enumerate(board.week_starts):
        start = datetime.combine(week, datetime.min.time(), zone)
        end = min(datetime.combine(week + timedelta(days=7), datetime.min.time(), zone), board.now)
        links[i] = posts_link(PostFilter(start, end, status=PostStatus.PUBLISHED, only="rated"))
        measured_links[i] = posts_link(PostFilter(start, end, status=PostStatus.PUBLISHED, only="measured"))
    hours = [f"{h:02d}" for h in range(24)]
    days = [d[:3] for d in WEEKDAYS]
    # A cell's rate and the posts it rests on: the rated ones only.
    cells = {cell: stats.engagement_rate for cell, stats in board.heatmap.items()
             if stats.engagement_rate is not None}
    counts = {cell: stats.rated_posts for cell, stats in board.heatmap.items() if stats.engagement_rate is not None}
    note = f"Weeks start on Monday in your time zone ({board.timezone}); the current week is still running."

    def left_out(what: str) -> str:
        return f" {what} {not_reported(unrated)}: see interactions per post." if unrated else ""

    return {
        "impressions": category_chart("chart-impressions", "Impressions per week", labels, impressions,
                                      unit="count", kind="bar", x_title="Week of", links=links,
                                      note=note + left_out("Impressions")),
        "engagement": category_chart("chart-engagement", "Engagement rate per week", labels, rates,
                                     unit="rate", x_title="Week of", links=links, note=note + left_out("Engagement rate")),
        "interactions": category_chart("chart-interactions", "Interactions per post, per week", labels, per_post,
                                       unit="average", x_title="Week of", links=measured_links,
                                       note="Likes, shares (reposts, boosts) and comments (replies) per measured "
                                            "post, on every platform. " + note),
        "heatmap": grid_chart("chart-heatmap", f"Engagement by weekday and hour (last {board.days} days)", cells,
                              row_labels=days, column_labels=hours, counts=counts,
                              x_title=f"Hour ({board.timezone})",
                              note="When your posts with an engagement rate went out, in your local time: the "
                                   "larger and darker the dot, the more engaging. The posting-time advice of a "
                                   "platform with impressions reads this grid." + left_out("Engagement rate")),
    }


@bp.route("/")
@login_required
def index() -> str:
    """The same page as the home page (bookmarks of /dashboard keep working)."""
    return page()


@bp.route("/posts")
@login_required
def posts() -> Any:
    """The signed-in user's posts a figure counts: scheduled in [since, until), with a status,
    a platform, and "on_time", "measured" or "rated" narrowing them as the figure does."""
    try:
        since = datetime.fromisoformat(request.args["since"])
        until = datetime.fromisoformat(request.args["until"])
    except (KeyError, ValueError):
        abort(400, "since and until must be ISO 8601 instants")
    if since.tzinfo is None or until.tzinfo is None or not timedelta(0) < until - since <= MAX_LIST_WINDOW:
        abort(400, "since and until must be aware instants at most 400 days apart")
    status = request.args.get("status")
    only = request.args.get("only")
    platform = request.args.get("platform")
    if status is not None and status not in {s.value for s in PostStatus}:
        abort(400, "unknown status")
    if only not in (None, "on_time", "measured", "rated"):
        abort(400, "only must be on_time, measured or rated")
    zone = g.user.settings.timezone or "UTC"
    with read_session() as session:
        records = post_records(session, g.user.id, since, until, zone)
    chosen = [r for r in records if (status is None or r.status == status)
              and (platform is None or r.platform == platform)
              and (only != "on_time" or is_on_time(r)) and (only != "measured" or r.measured)
              and (only != "rated" or r.rated)]
    shown = sorted(chosen, key=lambda r: (r.published_at or r.scheduled_at), reverse=True)[:MAX_LISTED]
    return render_template("portal/dashboard_posts.html", records=shown, total=len(chosen), zone=zone,
                           since=since, until=until, status=status, only=only, platform=platform,
                           platform_name=display_name, local=_local, reports_impressions=reports_impressions)
