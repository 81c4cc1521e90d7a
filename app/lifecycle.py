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

States and moves only: what a publish attempt's outcome records (review, retry, published) is
:mod:`app.workflows.publish_outcomes`'; what an operator is told about a late post is
:func:`app.posts.why_late`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, case, tuple_, update
from sqlalchemy.orm import Session

from app.batches import keep_moved, tokens_by_post
from app.chunks import chunks
from app.errors import AutopilotError
from app.intents import PublishPosts
from app.models import Post, PostStatus

__all__ = [
    "ALLOWED_MOVES", "CANCELLABLE", "RESCHEDULABLE", "ROWS_PER_UPDATE", "Claim", "IllegalMove",
    "claim_for_publishing", "move", "move_many", "new_claim_token", "queue_in_batches", "stale_at",
]

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

#: Posts moved per UPDATE statement by the dispatcher and the sweeper (a chunk of rows, so a
#: statement's parameter list stays bounded whatever the number of posts).
ROWS_PER_UPDATE = 500


class IllegalMove(AutopilotError):
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


# -- pure helpers ---------------------------------------------------------------------------


def new_claim_token() -> str:
    return uuid.uuid4().hex


def stale_at(scheduled_at: datetime, grace_minutes: int) -> datetime:
    """The instant after which a post is no longer published but reviewed."""
    return scheduled_at + timedelta(minutes=grace_minutes)


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
    """Move the posts still in ``source``; one UPDATE per :data:`ROWS_PER_UPDATE` posts.

    Returns the ``returning`` columns of the posts that moved.
    """
    _check((source,), target)
    moved: list[Row[Any]] = []
    for chunk in chunks(post_ids, ROWS_PER_UPDATE):
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
    for chunk in chunks(list(tokens), ROWS_PER_UPDATE):
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


