"""Recovery within seconds: re-send posts whose message was lost, reconcile interrupted publishes.

The database knows which posts should be moving: a ``queued`` post is held by one message (its
claim token), a ``publishing`` post by the message whose worker is calling the platform. What
the database cannot know is whether that message still exists, so the broker is asked through
a :class:`~app.intents.MessageProbe` given by the actor layer.

**Telling a busy worker's message from a lost one.** A publish message's id is its post's claim
token (``actors/messages.py``). On Redis (``actors/liveness.py``) a message is alive while its
data is in Dramatiq's bookkeeping and it is either waiting in the queue or held by a worker that
is alive: whose heartbeat is fresher than ``WORKER_SILENCE_SECONDS`` (:mod:`app.redis_layout`
names the keys and states that rule). A live worker refreshes its heartbeat at least once a
second (its delay-queue consumer polls Redis even while every thread is busy), so a busy
worker's messages are alive and are left alone, however long its platform call takes; a
SIGKILLed worker's fall silent within seconds, and a FLUSHDB takes the data itself. Dramatiq
would return a dead worker's messages only after its own heartbeat timeout and a random
maintenance pass (minutes); we do not wait for that.

Every minute (the ``recover_lost_posts`` step of the minute job, before it claims new posts):

* ``queued``, sent more than ``MESSAGE_GRACE_SECONDS`` ago (for a retry: its retry time) and its
  message not alive: re-sent under a new claim token, due at its own time if that is still
  ahead (a post claimed two minutes early whose message vanished still goes out on its second).
  The old message, should it turn up, finds the token changed and does nothing. Past the stale
  grace it goes to review instead.
* ``publishing`` for more than ``MESSAGE_GRACE_SECONDS`` and its message not alive: the worker
  died mid-call. The platform is asked whether the post exists (never re-posted blindly); found,
  it is recorded with the platform's own creation time; not found, a person decides.
* A redelivered tick re-sends what its interrupted attempt claimed and never handed to the
  broker at once, without waiting for the grace (the posts carry the attempt's instant).

Without a probe (another process looking at an in-process broker) messages are presumed lost
only by time: a queued post :data:`DEFAULT_UNPROBED_QUEUED_GRACE` past its time, a publish
older than :data:`DEFAULT_UNPROBED_LEASE`. With a probe, a publish still "alive" after
:data:`DEFAULT_PUBLISHING_BACKSTOP` (past the publish actor's time limit) is reconciled anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.audit import AuditEntry, record_many
from app.batches import plan_batches
from app.errors import TokenDecryptionError
from app.intents import Intent, MessageProbe, PublishPosts
from app.jobs.spec import Step, Tick
from app.lifecycle import Claim, queue_in_batches
from app.models import LateReason, PlatformAccount, Post, PostStatus, ReviewReason, UserSettings
from app.providers.base import AccountCredentials, PostRef, Publisher, PublishResult
from app.runtime import Runtime
from app.workflows.accounts import flag_reauth
from app.workflows.publish import look_for, post_ref
from app.workflows.publish_outcomes import notify_sent_to_review, record_published, review

__all__ = [
    "DEFAULT_PUBLISHING_BACKSTOP", "DEFAULT_UNPROBED_LEASE", "DEFAULT_UNPROBED_QUEUED_GRACE",
    "RECOVER_LOST_POSTS", "Recovery", "recover_posts",
]

#: Without a broker to ask: a queued post this far past its time (or retry time) lost its message.
DEFAULT_UNPROBED_QUEUED_GRACE = timedelta(minutes=3)
#: Without a broker to ask: a publish running longer than this belongs to a dead worker.
DEFAULT_UNPROBED_LEASE = timedelta(minutes=2)
#: A publish whose message still looks alive after this is reconciled anyway: the publish
#: actor's time limit (5 minutes, ``actors/posting.py``) has passed, so nobody is working it.
DEFAULT_PUBLISHING_BACKSTOP = timedelta(minutes=6)


@dataclass
class Recovery:
    """What one recovery pass did: the messages to send and what it found."""

    resent: list[PublishPosts] = field(default_factory=list)
    #: Interrupted publishes found on the platform and recorded as published.
    reconciled: int = 0
    #: Posts sent to review: lost and past the stale grace, or interrupted and not found.
    reviewed: int = 0
    #: Their ids: the pass tells each user of theirs in one notice.
    reviewed_posts: list[int] = field(default_factory=list)
    #: Queued or publishing posts past the grace whose message was alive (left alone).
    alive: int = 0

    def counts(self) -> dict[str, int]:
        return {"resent": sum(len(batch.post_ids) for batch in self.resent), "reconciled": self.reconciled, "reviewed": self.reviewed,
                "alive": self.alive}


def recover_posts(runtime: Runtime, now: datetime, probe: MessageProbe | None, *,
                  everything_lost: bool = False, resumed_from: datetime | None = None) -> Recovery:
    """Re-send lost messages and reconcile interrupted publishes (module docstring).

    ``everything_lost``: every in-flight message died with the previous process (the in-process
    broker at start-up), so nothing waits for a grace. ``resumed_from``: the instant of an
    interrupted attempt of the calling tick; what it queued is re-sent at once if not alive.
    """
    grace = timedelta(seconds=runtime.settings.message_grace_seconds)
    recovery = Recovery()
    _resend_lost(runtime, now, probe, grace, everything_lost, resumed_from, recovery)
    _reconcile_interrupted(runtime, now, probe, grace, everything_lost, recovery)
    if recovery.reviewed_posts:
        with runtime.session_factory() as session, session.begin():
            notify_sent_to_review(session, recovery.reviewed_posts, now)
    return recovery


# -- queued posts whose message was lost -----------------------------------------------------


def _resend_lost(runtime: Runtime, now: datetime, probe: MessageProbe | None, grace: timedelta,
                 everything_lost: bool, resumed_from: datetime | None, recovery: Recovery) -> None:
    stale_grace = runtime.settings.stale_grace_minutes
    stale_before = now - timedelta(minutes=stale_grace)
    query = select(Post.id, Post.user_id, Post.scheduled_at, Post.claim_token, Post.attempts,
                   Post.platform, Post.text, Post.publish_started_at).where(Post.status == PostStatus.QUEUED)
    if not everything_lost:
        sent_before = now - grace
        if probe is None:
            cutoff = now - DEFAULT_UNPROBED_QUEUED_GRACE
            query = query.where(Post.scheduled_at < cutoff)
            sent_before = cutoff
        sent_long_ago = Post.queued_at.is_(None) | (Post.queued_at < sent_before)
        if resumed_from is not None:
            sent_long_ago = sent_long_ago | (Post.queued_at == resumed_from)
        query = query.where(sent_long_ago)
    with runtime.session_factory() as session, session.begin():
        candidates = session.execute(query.order_by(Post.scheduled_at, Post.id)).all()
        lost = _not_alive(probe, candidates, everything_lost, recovery)
        resend = []
        for row in lost:
            if row.scheduled_at < stale_before or row.claim_token is None:
                claim = Claim(row.id, row.user_id, row.platform, row.text, row.scheduled_at,
                              row.attempts, row.publish_started_at or now, row.claim_token or "")
                outcome = review(session, claim, ReviewReason.STALE,
                                 f"its message was lost and it is more than {stale_grace} minutes late",
                                 now, source=PostStatus.QUEUED)
                recovery.reviewed += outcome.kind == "review"
                if outcome.kind == "review":
                    recovery.reviewed_posts.append(claim.post_id)
            else:
                resend.append(row)
        # Never early: a post re-sent before its time still waits for its second.
        planned = plan_batches((row.id, max(now, row.scheduled_at)) for row in resend)
        # Still queued under the token it was lost with: a message that turned up meanwhile wins.
        batches, moved = queue_in_batches(session, planned, source=PostStatus.QUEUED,
                                          held_by={row.id: row.claim_token for row in resend},
                                          queued_at=now, late_reason=LateReason.RESENT, late_since=now)
        due = {post_id: batch.due_at for batch in planned for post_id in batch.post_ids}
        record_many(session, [AuditEntry("post.requeued", row.user_id, row.id,
                                         {"reason": "message lost", "due_at": due[row.id].isoformat()})
                              for row in moved])
        recovery.resent.extend(batches)
    recovery.resent.sort(key=lambda batch: (batch.due_at, batch.post_ids))


def _not_alive(probe: MessageProbe | None, rows: Sequence, everything_lost: bool,  # type: ignore[type-arg]
               recovery: Recovery) -> list:  # type: ignore[type-arg]
    """The rows whose message (id = claim token) the broker no longer has."""
    if everything_lost or probe is None or not rows:
        return list(rows)
    alive = probe.alive([row.claim_token for row in rows if row.claim_token])
    recovery.alive += sum(1 for row in rows if row.claim_token in alive)
    return [row for row in rows if row.claim_token not in alive]


# -- publishes a dead worker left ------------------------------------------------------------


def _reconcile_interrupted(runtime: Runtime, now: datetime, probe: MessageProbe | None, grace: timedelta,
                           everything_lost: bool, recovery: Recovery) -> None:
    lease = DEFAULT_UNPROBED_LEASE if probe is None and not everything_lost else grace
    with runtime.session_factory() as session:
        with session.begin():
            work = _interrupted(runtime, session, now, now - lease, probe, everything_lost, recovery)
        for claim, creds, ref in work:
            error = "the worker publishing it stopped mid-call"
            found: PublishResult | None = None
            try:
                publisher: Publisher | None = runtime.providers.publisher(claim.platform)
            except KeyError:
                publisher = None
            if publisher is None or creds is None:
                note = "cannot check the platform: no publisher or no usable account"
            else:
                found, note = look_for(publisher, creds, claim, ref, runtime.now(),
                                       runtime.settings.stale_grace_minutes)
            with session.begin():
                if found is not None:
                    outcome = record_published(session, claim, found, runtime.now(), action="post.reconciled",
                                               error=f"{error}; {note}")
                    recovery.reconciled += outcome.kind == "published"
                else:
                    outcome = review(session, claim, ReviewReason.OUTCOME_UNKNOWN, f"{error}; {note}", now)
                    recovery.reviewed += outcome.kind == "review"
                    if outcome.kind == "review":
                        recovery.reviewed_posts.append(claim.post_id)


def _interrupted(runtime: Runtime, session: Session, now: datetime, started_before: datetime,
                 probe: MessageProbe | None, everything_lost: bool,
                 recovery: Recovery) -> list[tuple[Claim, AccountCredentials | None, PostRef]]:
    """Publishes whose worker is gone, marked as reconciling, with their account's credentials
    and what a platform with a repeatable create needs to repeat it."""
    rows: list[Any] = list(session.execute(
        select(Post, PlatformAccount, UserSettings.language, UserSettings.post_visibility)
        .outerjoin(PlatformAccount, (PlatformAccount.user_id == Post.user_id)
                   & (PlatformAccount.platform == Post.platform))
        .outerjoin(UserSettings, UserSettings.user_id == Post.user_id)
        .where(Post.status == PostStatus.PUBLISHING, Post.publish_started_at < started_before)
        .order_by(Post.publish_started_at, Post.id)
    ).all())
    if probe is not None and not everything_lost and rows:
        alive = probe.alive([row[0].claim_token for row in rows if row[0].claim_token])
        backstop = now - DEFAULT_PUBLISHING_BACKSTOP
        kept = [row for row in rows
                if row[0].claim_token not in alive or (row[0].publish_started_at or now) < backstop]
        recovery.alive += len(rows) - len(kept)
        rows = kept
    work = []
    for post, account, language, visibility in rows:
        claim = Claim(post.id, post.user_id, post.platform, post.text, post.scheduled_at,
                      post.attempts, post.publish_started_at or now, post.claim_token or "")
        creds: AccountCredentials | None = None
        if account is not None:
            try:
                creds = runtime.vault.credentials(account)
            except TokenDecryptionError as exc:
                # Only reconnecting the account can help: flag it (the user is told once).
                flag_reauth(session, account.id, post.user_id, post.platform, str(exc), now)
                creds = None
        work.append((claim, creds, post_ref(claim, language, visibility)))
    if work:
        # Visible while the platform is asked (autopilot posts list, the admin).
        session.execute(
            update(Post).where(or_(*[(Post.id == c.post_id) & (Post.claim_token == c.token) for c, _, _ in work]),
                               Post.status == PostStatus.PUBLISHING)
            .values(late_reason=LateReason.RECONCILING, late_since=now)
            .execution_options(synchronize_session=False))
    return work


# -- the minute job's step -------------------------------------------------------------------


def _recover(tick: Tick) -> Sequence[Intent]:
    return recover_posts(tick.runtime, tick.now, tick.messages, everything_lost=tick.messages_lost,
                         resumed_from=tick.resumed_from).resent


RECOVER_LOST_POSTS = Step(
    "recover_lost_posts",
    "Re-send queued posts whose message is gone from the broker (lost, or held by a worker whose "
    "heartbeat stopped) and reconcile publishes such a worker left, after MESSAGE_GRACE_SECONDS",
    _recover)
