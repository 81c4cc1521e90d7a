"""A post's life cycle: its states, the moves allowed between them, and the one guarded move.

::

    scheduled --dispatch--> queued --claim--> publishing --success / found--> published
        |                    ^   |                |
        |                    |   |                +-- 429, temporary error --> queued (new token)
        +-- stale -----------|---+-- stale -------+-- permanent error, auth refused, outcome
        v                    |                    |   unknown and not found, stale --------+
    needs_review             +-- sweep: lost message gets a new token                      |
        ^   |                                                                              |
        |   +-- approve --> scheduled              (and cancel: scheduled, queued,         |
        +---------------------------------------------  needs_review, failed -> cancelled)-+

Every move is one conditional UPDATE on the status it expects (:func:`move`), so two actors
racing for a post (a worker claiming it, an operator cancelling it, the sweeper re-sending it)
cannot both win. From ``queued`` on, a move also names the claim token of the message holding
the post: a redelivered, duplicated or superseded message finds the token changed and does
nothing (ARCHITECTURE decision 4). The publishing workflows (:mod:`app.workflows.dispatch`,
:mod:`app.workflows.publish`, :mod:`app.workflows.sweep`) and the operator's actions
(:mod:`app.posts`) change a post's status only through this module.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, case, func, select, tuple_, update
from sqlalchemy.orm import Session

from app.audit import AuditEntry, record, record_many
from app.batches import keep_moved, tokens_by_post
from app.error_tracking import report_publish_failure
from app.intents import PublishPosts
from app.models import LateReason, Post, PostStatus, ReviewReason
from app.notifications import notify
from app.providers.base import PublishResult

__all__ = [
    "ALLOWED_MOVES", "CANCELLABLE", "DEFAULT_CLAIM_BATCH", "DEFAULT_ERROR_LENGTH", "Claim",
    "IllegalMove", "NOTIFY_REVIEW_QUEUE", "PublishOutcome", "RESCHEDULABLE", "chunks", "claim_for_publishing",
    "describe", "superseded",
    "move", "move_many", "new_claim_token", "queue_in_batches", "record_published", "record_published_many", "retry", "review", "review_queue_size",
    "alert_review_queue", "stale_at", "why_late",
]

logger = logging.getLogger(__name__)

S = PostStatus
#: Every move a post may make; anything else is a bug, refused by :func:`move`.
ALLOWED_MOVES: dict[PostStatus, frozenset[PostStatus]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.NEEDS_REVIEW, S.CANCELLED, S.SCHEDULED}),
    S.QUEUED: frozenset({S.PUBLISHING, S.NEEDS_REVIEW, S.CANCELLED, S.QUEUED}),
    S.PUBLISHING: frozenset({S.PUBLISHED, S.QUEUED, S.NEEDS_REVIEW}),
    # A review "outcome unknown" may still learn that the post went out (a slow worker).
    S.NEEDS_REVIEW: frozenset({S.SCHEDULED, S.CANCELLED, S.PUBLISHED}),
    S.FAILED: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.PUBLISHED: frozenset(),
    S.CANCELLED: frozenset(),
}
#: States from which an operator may cancel a post (a post being published cannot be).
CANCELLABLE = (S.SCHEDULED, S.QUEUED, S.NEEDS_REVIEW, S.FAILED)
#: States from which a post may be edited, approved or rescheduled.
RESCHEDULABLE = (S.SCHEDULED, S.NEEDS_REVIEW, S.FAILED)

#: Posts moved per UPDATE statement by the dispatcher and the sweeper.
DEFAULT_CLAIM_BATCH = 500
#: Characters of a platform error message kept in ``Post.last_error``.
DEFAULT_ERROR_LENGTH = 1000
#: Posts waiting for review (per user) from which the user is told the queue is growing.
DEFAULT_REVIEW_ALERT_THRESHOLD = 5
#: At most one "review queue growing" notification per user in this interval.
DEFAULT_REVIEW_ALERT_INTERVAL = timedelta(days=1)

NOTIFY_REVIEW_QUEUE = "review_queue_growing"


class IllegalMove(ValueError):
    """A move the life cycle does not allow: a programming error, never a race."""


@dataclass(frozen=True)
class Claim:
    """A post as claimed by one message: what the rest of an attempt needs."""

    post_id: int
    user_id: int
    platform: str
    text: str
    scheduled_at: datetime
    attempts: int
    started_at: datetime
    token: str


@dataclass(frozen=True)
class PublishOutcome:
    """What an attempt did. On ``"retry"`` send ``claim_token`` again at ``retry_at``."""

    kind: Literal["published", "retry", "review", "skipped"]
    retry_at: datetime | None = None
    claim_token: str | None = None
    detail: str = ""


# -- pure helpers ---------------------------------------------------------------------------


def new_claim_token() -> str:
    return uuid.uuid4().hex


def stale_at(scheduled_at: datetime, grace_minutes: int) -> datetime:
    """The instant after which a post is no longer published but reviewed."""
    return scheduled_at + timedelta(minutes=grace_minutes)


def describe(exc: BaseException) -> str:
    """An error as stored on a post: its type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:DEFAULT_ERROR_LENGTH]


def why_late(post: Post, now: datetime) -> tuple[str, datetime] | None:
    """Why a post that should be out by ``now`` is not, and since when; None if it is not late.

    What an operator sees in ``autopilot posts list`` and the admin: a post waiting for the
    dispatcher (scheduler down), for its message, for its retry, being recovered (its message
    was lost and re-sent), publishing, or being reconciled with the platform.
    """
    status, due = post.status, post.scheduled_at
    if status == S.SCHEDULED and now > due:
        return "waiting for the dispatcher", due
    if status == S.QUEUED:
        if post.late_reason == LateReason.RESENT and post.late_since is not None:
            return "being recovered: its message was lost and re-sent", post.late_since
        if now <= due:
            return None
        if post.queued_at is not None and post.queued_at > due:
            return f"waiting for its retry (due {post.queued_at:%H:%M:%S} UTC)", due
        return "waiting for its message", due
    if status == S.PUBLISHING:
        if post.late_reason == LateReason.RECONCILING and post.late_since is not None:
            return "reconciling: asking the platform whether it went out", post.late_since
        if now > due and post.publish_started_at is not None:
            return "publishing: waiting for the platform's answer", post.publish_started_at
    return None


def chunks(items: Sequence[Any], size: int = DEFAULT_CLAIM_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _check(sources: Collection[PostStatus], target: PostStatus) -> None:
    for source in sources:
        if target not in ALLOWED_MOVES[source]:
            raise IllegalMove(f"a post cannot move from {source} to {target}")


# -- the guarded move -----------------------------------------------------------------------


def move(session: Session, post_id: int, *, source: PostStatus | Collection[PostStatus],
         target: PostStatus, token: str | None = None, where: Sequence[ColumnElement[bool]] = (),
         **values: Any) -> bool:
    """Move one post from ``source`` to ``target`` if it is still there; False if it was not.

    ``token``: the claim token the post must still carry. ``where``: further conditions.
    """
    sources = (source,) if isinstance(source, PostStatus) else tuple(source)
    _check(sources, target)
    conditions = [Post.id == post_id, Post.status.in_(sources), *where]
    if token is not None:
        conditions.append(Post.claim_token == token)
    result = session.execute(
        update(Post).where(*conditions).values(status=target, **values)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def move_many(session: Session, post_ids: Sequence[int], *, source: PostStatus, target: PostStatus,
              where: Sequence[ColumnElement[bool]] = (), returning: Sequence[Any] = (Post.id, Post.user_id),
              **values: Any) -> list[Row[Any]]:
    """Move a batch of posts still in ``source``; one UPDATE per :data:`DEFAULT_CLAIM_BATCH`.

    Returns the ``returning`` columns of the posts that moved.
    """
    _check((source,), target)
    moved: list[Row[Any]] = []
    for chunk in chunks(post_ids):
        moved.extend(session.execute(
            update(Post).where(Post.id.in_(chunk), Post.status == source, *where)
            .values(status=target, **values).returning(*returning)
            .execution_options(synchronize_session=False)).all())
    return moved


def queue_in_batches(session: Session, planned: Sequence[PublishPosts], *, source: PostStatus,
                     held_by: dict[int, str] | None = None, where: Sequence[ColumnElement[bool]] = (),
                     returning: Sequence[Any] = (Post.id, Post.user_id), **values: Any,
                     ) -> tuple[list[PublishPosts], list[Row[Any]]]:
    """``source -> queued`` for the posts of ``planned``, each under its batch's claim token.

    ``held_by``: the claim token each post must still carry (a re-send: a message that turned
    up meanwhile wins). Returns the batches as far as their posts moved (a concurrent claimer
    may have taken some), and the ``returning`` columns of the posts that moved.
    """
    tokens = tokens_by_post(planned)
    moved: list[Row[Any]] = []
    for chunk in chunks(list(tokens)):
        conditions = list(where)
        if held_by is not None:
            conditions.append(tuple_(Post.id, Post.claim_token).in_([(i, held_by[i]) for i in chunk]))
        moved.extend(move_many(session, chunk, source=source, target=S.QUEUED, where=conditions,
                               returning=returning, claim_token=case({i: tokens[i] for i in chunk}, value=Post.id),
                               **values))
    return keep_moved(planned, {row.id for row in moved}), moved


def claim_for_publishing(session: Session, post_ids: Sequence[int], token: str, now: datetime) -> list[Claim]:
    """``queued -> publishing`` for the posts the message holding ``token`` still holds.

    One UPDATE for the whole batch; the posts no longer held (a redelivered message, a
    superseded token, a cancelled post) are simply not returned. The caller commits this before
    calling the platform: from then on a redelivered or duplicated message finds the posts taken.
    """
    _check((S.QUEUED,), S.PUBLISHING)
    rows = session.execute(
        update(Post)
        .where(Post.id.in_(post_ids), Post.status == S.QUEUED, Post.claim_token == token)
        .values(status=S.PUBLISHING, publish_started_at=now, attempts=Post.attempts + 1,
                late_reason=None, late_since=None)
        .returning(Post.id, Post.user_id, Post.platform, Post.text, Post.scheduled_at, Post.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    order = {post_id: n for n, post_id in enumerate(post_ids)}
    return [Claim(post_id=row.id, user_id=row.user_id, platform=row.platform, text=row.text,
                  scheduled_at=row.scheduled_at, attempts=row.attempts, started_at=now, token=token)
            for row in sorted(rows, key=lambda row: order[row.id])]


# -- the outcomes of a claimed post ----------------------------------------------------------


def review_queue_size(session: Session, *, user_id: int | None = None) -> int:
    """Posts waiting in ``needs_review`` (for one user, or for everyone)."""
    query = select(func.count()).select_from(Post).where(Post.status == S.NEEDS_REVIEW)
    if user_id is not None:
        query = query.where(Post.user_id == user_id)
    return session.scalar(query) or 0


def alert_review_queue(session: Session, user_id: int, now: datetime) -> None:
    """Tell the user, at most daily, when their review queue reaches the threshold."""
    size = review_queue_size(session, user_id=user_id)
    if size >= DEFAULT_REVIEW_ALERT_THRESHOLD:
        notify(session, user_id, NOTIFY_REVIEW_QUEUE, f"{size} posts are waiting for your review",
               f"{size} posts could not be published automatically and wait for your decision "
               "(approve, edit, reschedule or cancel) in the review queue.",
               dedupe_since=now - DEFAULT_REVIEW_ALERT_INTERVAL, now=now)


def review(session: Session, claim: Claim, reason: ReviewReason, error: str, now: datetime,
           *, source: PostStatus = S.PUBLISHING) -> PublishOutcome:
    """Hand a claimed post to the review queue, only while this claim still holds it."""
    if not move(session, claim.post_id, source=source, target=S.NEEDS_REVIEW, token=claim.token,
                review_reason=reason, last_error=error, claim_token=None):
        return superseded(claim)
    record(session, "post.reviewed", user_id=claim.user_id, post_id=claim.post_id,
           details={"reason": reason, "error": error})
    alert_review_queue(session, claim.user_id, now)
    # Final: the post will not be published without an operator (one Sentry event per post).
    report_publish_failure(post_id=claim.post_id, user_id=claim.user_id, platform=claim.platform,
                           reason=reason, error=error)
    return PublishOutcome("review", detail=f"{reason}: {error}")


def superseded(claim: Claim) -> PublishOutcome:
    """The claim no longer holds the post (a sweep re-sent it, an operator cancelled it)."""
    logger.warning("post %s: claim %s was superseded during the attempt", claim.post_id, claim.token)
    return PublishOutcome("skipped", detail="the claim was superseded during the attempt")


def retry(session: Session, claim: Claim, retry_at: datetime, error: str, now: datetime,
          grace_minutes: int) -> PublishOutcome:
    """Back to ``queued`` under a new claim token, due at ``retry_at``; stale -> review.

    For a post waiting for a retry, ``queued_at`` holds ``retry_at`` (when its message is
    due), so the sweeper does not mistake a post waiting for a reset for a lost message.
    """
    if retry_at > stale_at(claim.scheduled_at, grace_minutes):
        return review(session, claim, ReviewReason.STALE,
                      f"{error}; the next attempt ({retry_at.isoformat()}) would be more than "
                      f"{grace_minutes} minutes late", now)
    token = new_claim_token()
    if not move(session, claim.post_id, source=S.PUBLISHING, target=S.QUEUED, token=claim.token,
                claim_token=token, queued_at=retry_at, last_error=error):
        return superseded(claim)
    record(session, "post.retry", user_id=claim.user_id, post_id=claim.post_id,
           details={"error": error, "retry_at": retry_at.isoformat(), "attempts": claim.attempts})
    return PublishOutcome("retry", retry_at=retry_at, claim_token=token, detail=error)


def record_published_many(session: Session, published: Sequence[tuple[Claim, PublishResult, datetime]]
                          ) -> dict[int, PublishOutcome]:
    """:func:`record_published` for a batch of successful calls: one UPDATE and one audit INSERT.

    ``published``: (claim, what the platform answered, when the call returned). A post whose
    row moved on during its call (the sweeper, an operator) goes through
    :func:`record_published` on its own, which knows those cases.
    """
    if not published:
        return {}
    done = {claim.post_id: result.published_at or finished for claim, result, finished in published}
    external = {claim.post_id: result.external_id for claim, result, _ in published}
    moved = set(session.scalars(
        update(Post)
        .where(tuple_(Post.id, Post.claim_token).in_([(c.post_id, c.token) for c, _, _ in published]),
               Post.status == S.PUBLISHING)
        .values(status=S.PUBLISHED, external_id=case(external, value=Post.id),
                published_at=case(done, value=Post.id), last_error=None, review_reason=None, claim_token=None)
        .returning(Post.id)
        .execution_options(synchronize_session=False)).all())
    outcomes: dict[int, PublishOutcome] = {}
    entries: list[AuditEntry] = []
    for claim, result, finished in published:
        if claim.post_id not in moved:
            outcomes[claim.post_id] = record_published(session, claim, result, finished)
            continue
        entries.append(AuditEntry("post.published", claim.user_id, claim.post_id, _published_details(
            claim, result, done[claim.post_id])))
        outcomes[claim.post_id] = PublishOutcome("published", detail=result.external_id)
    record_many(session, entries)
    return outcomes


def _published_details(claim: Claim, result: PublishResult, done: datetime) -> dict[str, Any]:
    return {"external_id": result.external_id, "url": result.url, "attempts": claim.attempts,
            "lateness_seconds": round((done - claim.scheduled_at).total_seconds(), 3)}


def record_published(session: Session, claim: Claim, result: PublishResult, done: datetime, *,
                     action: str = "post.published", error: str | None = None) -> PublishOutcome:
    """Record a post that exists on the platform (published, or found by reconciliation).

    Its publish time is the platform's own creation time when the platform gave one (a post
    found by reconciliation went out when the platform says, not when we looked), else ``done``.
    """
    if result.published_at is not None:
        done = result.published_at
    values: dict[str, Any] = {"external_id": result.external_id, "published_at": done,
                              "last_error": error, "review_reason": None, "claim_token": None}
    moved = move(session, claim.post_id, source=S.PUBLISHING, target=S.PUBLISHED, token=claim.token,
                 **values)
    if not moved:
        # The sweeper took this worker for dead and sent the post to review while the call was
        # in flight; the platform has since answered, so the review has nothing left to decide.
        moved = move(session, claim.post_id, source=S.NEEDS_REVIEW, target=S.PUBLISHED,
                     where=(Post.review_reason == ReviewReason.OUTCOME_UNKNOWN,
                            Post.publish_started_at == claim.started_at), **values)
    if not moved:
        current = session.execute(
            select(Post.status, Post.external_id).where(Post.id == claim.post_id)).first()
        if current is not None and tuple(current) == (S.PUBLISHED, result.external_id):
            return PublishOutcome("published", detail=f"{result.external_id} (already recorded)")
    details = _published_details(claim, result, done)
    if not moved:
        # Live on the platform, yet the row moved on (reconciled meanwhile): keep the id on record.
        details["conflict"] = "the post's row had moved on; not updated"
    record(session, action, user_id=claim.user_id, post_id=claim.post_id, details=details)
    return PublishOutcome("published", detail=result.external_id)
