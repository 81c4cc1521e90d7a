"""The minute's dispatch: claim the posts due within two minutes and hand them to the broker.

Redis only ever carries work due now or within a minute or two; the schedule itself stays in
the database (ARCHITECTURE decision 1). Claimed posts due at the same second share a claim
token and a :class:`~app.intents.PublishPosts` intent (up to ``PUBLISH_BATCH_SIZE`` posts each,
:mod:`app.batches`) that the actor layer sends to land just before their second.

The minute job first recovers (:mod:`app.workflows.recovery`): lost messages are re-sent and
interrupted publishes reconciled within seconds, and what an interrupted attempt of this tick
claimed but never sent goes out again (a claim is committed before its messages are sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import AuditEntry, record, record_many
from app.batches import plan_batches
from app.error_tracking import report_publish_failure
from app.intents import Intent, PublishPosts
from app.jobs.spec import PeriodicJob, Step, Tick
from app.jobs.upkeep import CATCH_UP_MISSED_SLOTS
from app.lifecycle import move_many, queue_in_batches
from app.models import SCHEDULED_DUE_AT, Post, PostStatus, ReviewReason
from app.queues import Queue
from app.runtime import Runtime
from app.workflows.media_uploads import uploads_to_send
from app.workflows.publish_outcomes import notify_sent_to_review
from app.workflows.recovery import RECOVER_LOST_POSTS

__all__ = ["DEFAULT_DISPATCH_HORIZON", "DISPATCH_DUE_POSTS", "dispatch_due_posts"]

#: How far ahead of its time a post is claimed and handed to the broker.
DEFAULT_DISPATCH_HORIZON = timedelta(minutes=2)


def dispatch_due_posts(runtime: Runtime, now: datetime,
                       horizon: timedelta = DEFAULT_DISPATCH_HORIZON) -> list[PublishPosts]:
    """Claim every scheduled post due by ``now + horizon``: ``scheduled -> queued``.

    Posts due at the same second are claimed in batches under one token each
    (:mod:`app.batches`). Posts more than the stale grace overdue go to review instead. Rows
    claimed by a concurrent dispatcher are skipped. One SELECT, one UPDATE and one audit INSERT
    per :data:`~app.lifecycle.ROWS_PER_UPDATE` posts, whatever their number.
    """
    grace = runtime.settings.stale_grace_minutes
    stale_before = now - timedelta(minutes=grace)
    due_by = now + horizon
    with runtime.session_factory() as session, session.begin():
        due = session.execute(
            select(Post.id, Post.scheduled_at)
            # status = 'scheduled' AND scheduled_at <= due_by, as one indexed expression whose
            # estimate does not grow with the history (app.models.SCHEDULED_DUE_AT).
            .where(SCHEDULED_DUE_AT <= due_by)
            .order_by(Post.scheduled_at, Post.id)
        ).all()
        stale_ids = [row.id for row in due if row.scheduled_at < stale_before]
        if stale_ids:
            _review_stale_scheduled(session, stale_ids, stale_before, now, grace)
        planned = plan_batches((row.id, row.scheduled_at) for row in due if row.scheduled_at >= stale_before)
        batches, claimed = queue_in_batches(
            session, planned, source=PostStatus.SCHEDULED,
            where=(Post.scheduled_at >= stale_before, Post.scheduled_at <= due_by),
            returning=(Post.id, Post.user_id, Post.scheduled_at), queued_at=now)
        record_many(session, [AuditEntry("post.queued", row.user_id, row.id,
                                         {"due_at": row.scheduled_at.isoformat()}) for row in claimed])
    return batches


def _review_stale_scheduled(session: Session, post_ids: list[int], stale_before: datetime,
                            now: datetime, grace: int) -> None:
    error = f"not published: more than {grace} minutes past its time when dispatched"
    moved = move_many(session, post_ids, source=PostStatus.SCHEDULED, target=PostStatus.NEEDS_REVIEW,
                      where=(Post.scheduled_at < stale_before,),
                      review_reason=ReviewReason.STALE, last_error=error, claim_token=None,
                      returning=(Post.id, Post.user_id, Post.platform))
    for row in moved:
        record(session, "post.reviewed", user_id=row.user_id, post_id=row.id,
               details={"reason": ReviewReason.STALE, "error": error})
        report_publish_failure(post_id=row.id, user_id=row.user_id, platform=row.platform,
                               reason=ReviewReason.STALE, error=error)
    notify_sent_to_review(session, [row.id for row in moved], now)


def _claim_due(tick: Tick) -> Sequence[Intent]:
    batches = dispatch_due_posts(tick.runtime, tick.now)
    # The images of the posts just queued are uploaded now, ahead of their second.
    queued = [post_id for batch in batches for post_id in batch.post_ids]
    return [*batches, *uploads_to_send(tick.runtime, queued)]


CLAIM_DUE_POSTS = Step(
    "claim_due_posts",
    "Claim the posts due in the next two minutes and send each to land at its exact second "
    "(posts more than the stale grace late go to review); upload their images ahead",
    _claim_due)

DISPATCH_DUE_POSTS = PeriodicJob(
    "dispatch_due_posts", "* * * * *", Queue.POSTING,
    "Recover lost messages and interrupted publishes; hand the posts due in the next two minutes "
    "to the workers; catch up missed daily slots",
    steps=(RECOVER_LOST_POSTS, CLAIM_DUE_POSTS, CATCH_UP_MISSED_SLOTS),
    claim_retention=timedelta(days=7),
)
