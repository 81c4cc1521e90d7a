"""The quarter-hour safety net: posts whose message was lost, publishes a dead worker left.

* ``queued`` past its time (or retry time) by a grace: its message was lost. It gets a new
  claim token (the old message, should it turn up, is skipped) and is sent again, or goes to
  review when past the stale grace.
* ``publishing`` for longer than a lease: its worker died mid-call. The platform is asked
  whether the post exists, exactly as after an unknown outcome, and otherwise a person decides.
* ``scheduled`` and due: dispatched as the minute's dispatch would.

The sweep job (:data:`SWEEP_STUCK_POSTS`) also re-sends lost per-user runs, emails pending
notifications and prunes old slot claims, each a named step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import case, select, tuple_
from sqlalchemy.orm import Session

from app.audit import record
from app.errors import TokenDecryptionError
from app.intents import Intent, PublishPost
from app.jobs.spec import PeriodicJob, Step, Tick
from app.jobs.upkeep import PRUNE_OLD_CLAIMS
from app.lifecycle import Claim, chunks, move_many, new_claim_token, record_published, review
from app.models import PlatformAccount, Post, PostStatus, ReviewReason
from app.notifications import send_pending_emails
from app.providers.base import AccountCredentials, Publisher, PublishResult
from app.runtime import Runtime
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.executions import REQUEUE_STALE_EXECUTIONS
from app.workflows.publish import look_for

__all__ = ["DEFAULT_PUBLISHING_LEASE", "DEFAULT_QUEUED_GRACE", "SWEEP_STUCK_POSTS", "sweep_stuck_posts"]

#: A queued post this far past its time (or its retry time) has lost its message.
DEFAULT_QUEUED_GRACE = timedelta(minutes=3)
#: A post publishing for longer than this belongs to a worker that died mid-call.
DEFAULT_PUBLISHING_LEASE = timedelta(minutes=2)
#: With every in-flight message known lost, "overdue by" thresholds shrink to nothing.
ALL_LOST = timedelta(days=-366)


def sweep_stuck_posts(runtime: Runtime, now: datetime, *, queued_grace: timedelta = DEFAULT_QUEUED_GRACE,
                      publishing_lease: timedelta = DEFAULT_PUBLISHING_LEASE) -> list[PublishPost]:
    """Re-dispatch lost messages, reconcile dead workers' posts, dispatch due ones (module doc)."""
    intents = _redispatch_lost(runtime, now, now - queued_grace)
    _reconcile_abandoned(runtime, now, now - publishing_lease)
    merged = {d.post_id: d for d in dispatch_due_posts(runtime, now)}
    merged.update({d.post_id: d for d in intents})
    return sorted(merged.values(), key=lambda d: (d.due_at, d.post_id))


def _redispatch_lost(runtime: Runtime, now: datetime, cutoff: datetime) -> list[PublishPost]:
    grace = runtime.settings.stale_grace_minutes
    stale_before = now - timedelta(minutes=grace)
    with runtime.session_factory() as session, session.begin():
        lost = session.execute(
            select(Post.id, Post.user_id, Post.scheduled_at, Post.claim_token, Post.attempts,
                   Post.platform, Post.text, Post.publish_started_at, Post.queued_at)
            .where(Post.status == PostStatus.QUEUED, Post.scheduled_at < cutoff,
                   (Post.queued_at.is_(None)) | (Post.queued_at < cutoff))
            .order_by(Post.scheduled_at, Post.id)
        ).all()
        resend = []
        for row in lost:
            if row.scheduled_at < stale_before or row.claim_token is None:
                claim = Claim(row.id, row.user_id, row.platform, row.text, row.scheduled_at,
                              row.attempts, row.publish_started_at or now, row.claim_token or "")
                review(session, claim, ReviewReason.STALE,
                       f"its message was lost and it is more than {grace} minutes late", now,
                       source=PostStatus.QUEUED)
            else:
                resend.append(row)
        intents: list[PublishPost] = []
        for chunk in chunks(resend):
            tokens = {row.id: new_claim_token() for row in chunk}
            # Still queued under the token it was lost with: a message that turned up meanwhile wins.
            moved = move_many(
                session, [r.id for r in chunk], source=PostStatus.QUEUED, target=PostStatus.QUEUED,
                where=(tuple_(Post.id, Post.claim_token).in_([(r.id, r.claim_token) for r in chunk]),),
                claim_token=case(tokens, value=Post.id), queued_at=now)
            due = {r.id: max(now, r.scheduled_at, r.queued_at or now) for r in chunk}
            for requeued in moved:
                # Never early: a post re-sent before its time still waits for its second.
                post_id = requeued.id
                intents.append(PublishPost(post_id, tokens[post_id], due[post_id]))
                record(session, "post.requeued", user_id=requeued.user_id, post_id=post_id,
                       details={"reason": "message lost"})
    return intents


def _reconcile_abandoned(runtime: Runtime, now: datetime, started_before: datetime) -> None:
    with runtime.session_factory() as session:
        with session.begin():
            work = _abandoned(runtime, session, now, started_before)
        for claim, creds in work:
            error = "the worker publishing it stopped mid-call"
            found: PublishResult | None = None
            try:
                publisher: Publisher | None = runtime.providers.publisher(claim.platform)
            except KeyError:
                publisher = None
            if publisher is None or creds is None:
                note = "cannot check the platform: no publisher or no usable account"
            else:
                found, note = look_for(publisher, creds, claim)
            with session.begin():
                if found is not None:
                    record_published(session, claim, found, runtime.now(), action="post.reconciled",
                                     error=f"{error}; {note}")
                else:
                    review(session, claim, ReviewReason.OUTCOME_UNKNOWN, f"{error}; {note}", now)


def _abandoned(runtime: Runtime, session: Session, now: datetime,
               started_before: datetime) -> list[tuple[Claim, AccountCredentials | None]]:
    """Posts publishing since before ``started_before``, with their account's credentials."""
    rows = session.execute(
        select(Post, PlatformAccount)
        .outerjoin(PlatformAccount, (PlatformAccount.user_id == Post.user_id)
                   & (PlatformAccount.platform == Post.platform))
        .where(Post.status == PostStatus.PUBLISHING, Post.publish_started_at < started_before)
        .order_by(Post.publish_started_at, Post.id)
    ).all()
    work = []
    for post, account in rows:
        claim = Claim(post.id, post.user_id, post.platform, post.text, post.scheduled_at,
                      post.attempts, post.publish_started_at or now, post.claim_token or "")
        creds: AccountCredentials | None = None
        if account is not None:
            try:
                creds = runtime.vault.credentials(account)
            except TokenDecryptionError:
                creds = None
        work.append((claim, creds))
    return work


def _recover_posts(tick: Tick) -> Sequence[Intent]:
    if tick.messages_lost:
        return sweep_stuck_posts(tick.runtime, tick.now, queued_grace=ALL_LOST)
    return sweep_stuck_posts(tick.runtime, tick.now)


def _send_emails(tick: Tick) -> Sequence[Intent]:
    if tick.runtime.settings.smtp_host:
        send_pending_emails(tick.runtime.session_factory, tick.runtime.settings, tick.now)
    return []


RECOVER_STUCK_POSTS = Step(
    "recover_stuck_posts",
    "Re-send posts whose message was lost (3 minutes overdue), reconcile publishes a dead worker "
    "left (2-minute lease), dispatch due posts",
    _recover_posts)

SEND_PENDING_EMAILS = Step(
    "send_pending_emails",
    "Email notifications not emailed yet (when SMTP is configured)",
    _send_emails)

SWEEP_STUCK_POSTS = PeriodicJob(
    "sweep_stuck_posts", "*/15 * * * *", "posting",
    "Safety net: recover stuck posts and per-user runs, send emails, prune old claims",
    steps=(RECOVER_STUCK_POSTS, REQUEUE_STALE_EXECUTIONS, SEND_PENDING_EMAILS, PRUNE_OLD_CLAIMS),
    claim_retention=timedelta(days=7),
)
