"""User control over posts: one-off posts, the review queue, approve, edit, reschedule, cancel;
and what an operator is told about a late post (:func:`why_late`).

Every change of status goes through :func:`app.lifecycle.move`, a conditional UPDATE on the
status it expects, so an operator cancelling a post races safely with a worker claiming it:
exactly one of them wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import AuditEntry, record, record_many
from app.clock import utcnow
from app.errors import FieldError, NotFound, ValidationError
from app.lifecycle import CANCELLABLE, RESCHEDULABLE, move, move_many
from app.models import LateReason, Post, PostStatus, User
from app.platforms import KNOWN_PLATFORMS
from app.text_limits import limit_error, normalize_newlines


def get_post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    return post


def check_text(platform: str, text: str) -> str:
    """Refuse an empty text or one over the platform's limit, naming the field."""
    if platform not in KNOWN_PLATFORMS:
        raise ValidationError([FieldError("platform", platform, f"known: {', '.join(KNOWN_PLATFORMS)}")])
    stripped = normalize_newlines(text).strip()
    if not stripped:
        raise ValidationError([FieldError("text", text, "must not be empty")])
    problem = limit_error(platform, stripped)
    if problem:
        raise ValidationError([FieldError("text", stripped[:40] + "...", problem)])
    return stripped


def _check_future(at: datetime, now: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValidationError([FieldError("at", at.isoformat(), "needs a UTC offset, e.g. +01:00 or Z")])
    if at <= now:
        raise ValidationError([FieldError("at", at.isoformat(), "must be in the future")])
    return at


def create_one_off(
    session: Session, user: User, platform: str, at: datetime, text: str, *, now: datetime, actor: str = "cli"
) -> Post:
    """Schedule a one-off post at ``at`` (any offset; stored as UTC)."""
    clean_text = check_text(platform, text)
    _check_future(at, now)
    post = Post(user_id=user.id, platform=platform, text=clean_text, origin="manual",
                status=PostStatus.SCHEDULED, scheduled_at=at)
    session.add(post)
    session.flush()
    record(session, "post.scheduled", user_id=user.id, post_id=post.id, actor=actor,
           details={"platform": platform, "at": post.scheduled_at.isoformat(), "origin": "manual"})
    return post


def _transition(session: Session, post: Post, allowed: tuple[PostStatus, ...], target: PostStatus,
                **values: Any) -> bool:
    moved = move(session, post.id, source=allowed, target=target, updated_at=utcnow(), **values)
    session.refresh(post)
    return moved


def approve(session: Session, post_id: int, *, now: datetime, at: datetime | None = None,
            text: str | None = None, actor: str = "cli") -> Post:
    """Send a reviewed post back to the schedule, optionally edited and at a new time.

    Without ``at`` the post keeps its time if that is still ahead, else goes out now.
    """
    post = get_post(session, post_id)
    new_text = check_text(post.platform, text) if text is not None else post.text
    when = _check_future(at, now) if at is not None else max(post.scheduled_at, now)
    if not _transition(session, post, RESCHEDULABLE, PostStatus.SCHEDULED, scheduled_at=when,
                       text=new_text, review_reason=None, claim_token=None, last_error=None):
        raise ValidationError([FieldError("status", post.status, "only scheduled, failed or reviewed posts can be approved")])
    record(session, "post.approved", user_id=post.user_id, post_id=post.id, actor=actor,
           details={"at": when.isoformat(), "edited": text is not None})
    return post


def cancel(session: Session, post_id: int, *, actor: str = "cli") -> Post:
    post = get_post(session, post_id)
    if not _transition(session, post, CANCELLABLE, PostStatus.CANCELLED, claim_token=None):
        raise ValidationError([FieldError("status", post.status, "a post being published or already published cannot be cancelled")])
    record(session, "post.cancelled", user_id=post.user_id, post_id=post.id, actor=actor)
    return post


#: The statuses of a post still to go out, which "cancel the scheduled posts" cancels.
UPCOMING = (PostStatus.SCHEDULED, PostStatus.QUEUED, PostStatus.NEEDS_REVIEW)


def cancel_upcoming(session: Session, user_id: int, *, reason: str, actor: str, origin: str | None = None,
                    platform: str | None = None) -> list[int]:
    """Cancel every post of the user still to go out (of one origin or platform if given).

    One UPDATE per status (each a guarded move, so a post a worker claims meanwhile is left
    to it) and one audit INSERT, whatever the number of posts; the ids cancelled.
    """
    where = [Post.user_id == user_id]
    if origin is not None:
        where.append(Post.origin == origin)
    if platform is not None:
        where.append(Post.platform == platform)
    cancelled: list[int] = []
    for status in UPCOMING:
        ids = list(session.scalars(select(Post.id).where(Post.status == status, *where)))
        moved = move_many(session, ids, source=status, target=PostStatus.CANCELLED, claim_token=None,
                          updated_at=utcnow(), returning=(Post.id,))
        cancelled.extend(row.id for row in moved)
    record_many(session, [AuditEntry("post.cancelled", user_id=user_id, post_id=post_id, actor=actor,
                                     details={"reason": reason}) for post_id in cancelled])
    return cancelled


def why_late(post: Post, now: datetime) -> tuple[str, datetime] | None:
    """Why a post that should be out by ``now`` is not, and since when; None if it is not late.

    What an operator sees in ``autopilot posts list`` and the admin: a post waiting for the
    dispatcher (scheduler down), for its message, for its retry, being recovered (its message
    was lost and re-sent), publishing, or being reconciled with the platform.
    """
    status, due = post.status, post.scheduled_at
    if status == PostStatus.SCHEDULED and now > due:
        return "waiting for the dispatcher", due
    if status == PostStatus.QUEUED:
        if post.late_reason == LateReason.RESENT and post.late_since is not None:
            return "being recovered: its message was lost and re-sent", post.late_since
        if now <= due:
            return None
        if post.queued_at is not None and post.queued_at > due:
            return f"waiting for its retry (due {post.queued_at:%H:%M:%S} UTC)", due
        return "waiting for its message", due
    if status == PostStatus.PUBLISHING:
        if post.late_reason == LateReason.RECONCILING and post.late_since is not None:
            return "reconciling: asking the platform whether it went out", post.late_since
        if now > due and post.publish_started_at is not None:
            return "publishing: waiting for the platform's answer", post.publish_started_at
    return None
