"""The user's own posts: what is coming (in their local time), what waits for them, what went out.

Approve, edit, reschedule and cancel are :mod:`app.posts`' operator actions (the admin's review
queue calls the same ones) with the user as the actor: the same guarded moves, the same rules,
the same audit rows. Every post is fetched through :func:`portal.scoping.owned_or_404`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func

from app import posts as post_service
from app.audit import record
from app.clock import utcnow
from app.errors import FieldError, NotFound, ValidationError
from app.lifecycle import CANCELLABLE, RESCHEDULABLE
from app.media import library
from app.models import MediaItem, PlatformAccount, Post, PostStatus
from app.platforms import PLATFORMS, display_name, published_post_url
from app.scheduling import local_to_utc
from app.text_limits import normalize_newlines
from portal.auth import current_actor, login_required
from portal.ext import db_session
from portal.scoping import owned_or_404, user_query, user_rows

bp = Blueprint("posts", __name__, url_prefix="/posts")

NAV = ("Posts", "posts.index")

#: Posts listed per page of each section, "waiting for you" included (the rest: further pages).
PAGE_SIZE = 25
#: The statuses in which a post's image may change (not yet handed to a worker).
IMAGE_EDITABLE = (PostStatus.SCHEDULED, PostStatus.NEEDS_REVIEW)
#: How far ahead "approve and publish now" schedules a post (approve() wants a future time).
APPROVE_NOW_DELAY = timedelta(seconds=1)
#: The ``<input type="datetime-local">`` format, minutes only.
LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


def user_zone() -> ZoneInfo:
    """The signed-in user's zone (looked up once per request: a list page converts many times)."""
    if "user_zone" not in g:
        g.user_zone = ZoneInfo(g.user.settings.timezone or "UTC")
    return g.user_zone


def local(value: datetime | None) -> str:
    """A UTC instant as the user's wall-clock time, e.g. ``Mon 7 Dec 2026, 09:00 CET``."""
    if value is None:
        return ""
    moment = value.astimezone(user_zone())
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} {moment.tzname()}"


def post_url(post: Any) -> str | None:
    """The published post's page on its platform (the registry knows how), or None.

    Where the page depends on the account (a Mastodon status lives on its instance), the
    registry's ``account_post_url`` is given the signed-in user's account there: the user's
    accounts are read once per request, not once per post.
    """
    platform = PLATFORMS.get(post.platform)
    account = None
    if platform is not None and platform.account_post_url is not None:
        account = _accounts_by_platform().get(post.platform)
    return published_post_url(post.platform, post.external_id, account)


def _accounts_by_platform() -> dict[str, Any]:
    """The signed-in user's accounts by platform, cached on the request."""
    cached: dict[str, Any] | None = g.get("_accounts_by_platform")
    if cached is None:
        cached = {row.platform: row for row in db_session().execute(user_rows(
            PlatformAccount, PlatformAccount.platform, PlatformAccount.service_url, PlatformAccount.handle))}
        g._accounts_by_platform = cached
    return cached


@bp.app_template_filter("local_time")
def _local_time_filter(value: datetime | None) -> str:
    return local(value)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"post_url": post_url, "platform_name": display_name, "PostStatus": PostStatus,
            "RESCHEDULABLE": RESCHEDULABLE, "CANCELLABLE": CANCELLABLE}


@dataclass(frozen=True)
class PostRow:
    """One line of a list, computed in Python (a Jinja call per cell costs more than the query)."""

    detail_url: str
    when: str
    platform: str
    status: str
    summary: str
    platform_url: str | None


def _rows(posts: Sequence[Any], *, published: bool) -> list[PostRow]:
    # The detail route is /posts/<post_id>: one url_for for the list, not one per row.
    base = url_for("posts.index")
    return [PostRow(detail_url=f"{base}{post.id}",
                    when=local(post.published_at if published else post.scheduled_at),
                    platform=display_name(post.platform), status=post.status.value,
                    summary=post.text if len(post.text) <= 140 else post.text[:137].rstrip() + "...",
                    platform_url=post_url(post) if published else None)
            for post in posts]


def _page(name: str) -> int:
    """A section's page number from the query string (1 when absent or not a positive number)."""
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and 0 < int(value) < 10_000 else 1


#: The columns a list row shows, read as plain rows (a post has thirty; ORM objects for 125
#: rows cost more than the three queries).
_LISTED = (Post.id, Post.platform, Post.text, Post.status, Post.scheduled_at, Post.published_at,
           Post.external_id)


@bp.route("/")
@login_required
def index() -> str:
    db = db_session()
    waiting_page, upcoming_page, published_page = _page("waiting"), _page("upcoming"), _page("published")
    waiting_query = user_rows(Post, *_LISTED).where(Post.status == PostStatus.NEEDS_REVIEW)
    # The heading counts every post waiting (what the user has to act on), the page shows 25.
    waiting_count = db.scalar(waiting_query.with_only_columns(func.count(), maintain_column_froms=True)) or 0
    waiting = db.execute(waiting_query.order_by(Post.scheduled_at, Post.id)
                         .offset((waiting_page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    # One more than a page: tells whether there is a next page without counting them all.
    upcoming = db.execute(user_rows(Post, *_LISTED).where(Post.status.in_(
        (PostStatus.SCHEDULED, PostStatus.QUEUED, PostStatus.PUBLISHING)))
        .order_by(Post.scheduled_at, Post.id).offset((upcoming_page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    published = db.execute(user_rows(Post, *_LISTED).where(Post.status == PostStatus.PUBLISHED)
                           .order_by(Post.published_at.desc(), Post.id.desc())
                           .offset((published_page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return render_template(
        "portal/posts.html", zone=g.user.settings.timezone, approval=g.user.settings.require_approval,
        waiting=_rows(waiting, published=False), waiting_count=waiting_count, waiting_page=waiting_page,
        waiting_more=waiting_page * PAGE_SIZE < waiting_count, upcoming=_rows(upcoming[:PAGE_SIZE], published=False),
        published=_rows(published[:PAGE_SIZE], published=True),
        upcoming_page=upcoming_page, upcoming_more=len(upcoming) > PAGE_SIZE,
        published_page=published_page, published_more=len(published) > PAGE_SIZE)


@bp.route("/<int:post_id>")
@login_required
def detail(post_id: int) -> str:
    post = owned_or_404(Post, post_id)
    return _render_detail(post, text=post.text, at=_local_input(post.scheduled_at), errors={})


def _local_input(value: datetime) -> str:
    return value.astimezone(user_zone()).strftime(LOCAL_INPUT_FORMAT)


def _render_detail(post: Post, *, text: str, at: str, errors: dict[str, list[str]]) -> str:
    images = db_session().scalars(user_query(MediaItem).order_by(MediaItem.created_at.desc(), MediaItem.id.desc())
                                  .limit(200)).all()
    image = next((i for i in images if i.id == post.media_id), None) if post.media_id else None
    if post.media_id and image is None:
        image = db_session().scalar(user_query(MediaItem).where(MediaItem.id == post.media_id))
    return render_template("portal/post.html", post=post, text=text, at=at, errors=errors,
                           zone=g.user.settings.timezone, images=images, image=image,
                           image_editable=post.status in IMAGE_EDITABLE)


def _parse_local(value: str) -> datetime | None:
    """The form's local date-time in the user's zone, as UTC; None when left empty."""
    value = value.strip()
    if not value:
        return None
    try:
        wall = datetime.strptime(value[:16], LOCAL_INPUT_FORMAT)
    except ValueError:
        raise ValidationError([FieldError("at", value, "not a date and time such as 2026-12-24T09:00")]) from None
    return local_to_utc(wall.date(), wall.time(), user_zone())


def _done(post: Post, message: str) -> Any:
    db_session().commit()
    flash(message, "success")
    return redirect(url_for("posts.detail", post_id=post.id))


def _refused(post: Post, exc: ValidationError, *, text: str | None = None, at: str | None = None) -> Any:
    db_session().rollback()
    db_session().refresh(post)
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        errors.setdefault(error.field, []).append(error.reason)
    flash("Not done: " + "; ".join(f"{e.field}: {e.reason}" for e in exc.errors), "error")
    return _render_detail(post, text=post.text if text is None else text,
                          at=_local_input(post.scheduled_at) if at is None else at, errors=errors), 400


@bp.route("/<int:post_id>/approve", methods=["POST"])
@login_required
def approve(post_id: int) -> Any:
    """Approve as it is: at its time if still ahead, else now (``now=1``: publish now)."""
    post = owned_or_404(Post, post_id)
    now = utcnow()
    at = now + APPROVE_NOW_DELAY if request.form.get("now") else None
    try:
        post_service.approve(db_session(), post.id, now=now, at=at, actor=current_actor())
    except ValidationError as exc:
        return _refused(post, exc)
    return _done(post, "Approved: it goes out " + ("now." if at else f"on {local(post.scheduled_at)}."))


@bp.route("/<int:post_id>/edit", methods=["POST"])
@login_required
def edit(post_id: int) -> Any:
    """Edit the text and/or the time (local), which also approves a post waiting for review."""
    post = owned_or_404(Post, post_id)
    submitted_text = request.form.get("text", "")
    submitted_at = request.form.get("at", "")
    now = utcnow()
    try:
        at = _parse_local(submitted_at)
        if at is not None and at == post.scheduled_at.replace(second=0, microsecond=0):
            at = None  # the time shown was left as it was: keep the post's own second
        text = normalize_newlines(submitted_text).strip()
        new_text = text if text != post.text.strip() else None
        if at is None and new_text is None and post.status == PostStatus.SCHEDULED:
            flash("Nothing changed.", "info")
            return redirect(url_for("posts.detail", post_id=post.id))
        post_service.approve(db_session(), post.id, now=now, at=at, text=new_text, actor=current_actor())
    except ValidationError as exc:
        return _refused(post, exc, text=submitted_text, at=submitted_at)
    return _done(post, f"Saved: it goes out on {local(post.scheduled_at)}.")


@bp.route("/<int:post_id>/image", methods=["POST"])
@login_required
def image(post_id: int) -> Any:
    """Add, change or (empty choice) remove the post's image, from the user's own library."""
    post = owned_or_404(Post, post_id)
    raw = request.form.get("media_id", "").strip()
    try:
        media_id = int(raw) if raw else None
    except ValueError:
        abort(404)
    try:
        library.attach_image(db_session(), post, media_id)
    except NotFound:
        abort(404)  # another user's image answers as one that does not exist
    except ValidationError as exc:
        return _refused(post, exc)
    record(db_session(), "post.image_changed", user_id=post.user_id, post_id=post.id, actor=current_actor(),
           details={"media_id": media_id})
    return _done(post, "Image removed." if media_id is None else "Image attached.")


@bp.route("/<int:post_id>/cancel", methods=["POST"])
@login_required
def cancel(post_id: int) -> Any:
    post = owned_or_404(Post, post_id)
    try:
        post_service.cancel(db_session(), post.id, actor=current_actor())
    except ValidationError as exc:
        return _refused(post, exc)
    return _done(post, "Cancelled: it will not be published.")

