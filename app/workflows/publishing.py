"""Publishing: claim due posts, publish each exactly once, recover what got stuck.

A post's life, every arrow an atomic conditional UPDATE on the status it expects (and, from
``queued`` on, on the claim token of the message holding it; see ARCHITECTURE decision 4)::

    scheduled --dispatch--> queued --claim--> publishing --success / found--> published
        |                    ^   |                |
        |                    |   |                +-- 429, temporary error --> queued (new token)
        +-- stale -----------|---+-- stale -------+-- permanent error, auth refused, outcome
        v                    |                    |   unknown and not found, stale --------+
    needs_review             +-- sweep: lost message gets a new token                      |
        ^                                                                                  |
        +----------------------------------------------------------------------------------+

* A claim token identifies one message. Every transition out of ``queued`` or ``publishing``
  names it, so a redelivered, duplicated or superseded message can never publish: it finds
  the token changed (or the status moved on) and returns ``"skipped"``.
* The ``publishing`` claim is committed before the platform is called. From then on the
  request may reach the platform, so a failure whose effect is unknown (timeout after sending,
  any unclassified exception, a worker dying mid-call) is never retried: the platform is asked
  whether the post exists (:meth:`Publisher.find_published`) and otherwise a person decides.
* Errors known to create nothing (429, temporary errors, an expired token) are retried with a
  new claim token; the caller sends the new token with a delay to ``retry_at``. For a post
  waiting for a retry, ``queued_at`` holds ``retry_at`` (when its message is due), so the
  sweeper does not mistake a post waiting for a rate-limit reset for a lost message.
* No post goes out more than ``Settings.stale_grace_minutes`` after its time: past that it
  waits for review instead (a morning post published at midnight does more harm than good).

Workflows never import dramatiq: actors call these functions and send the returned
:class:`Dispatch` and :class:`PublishOutcome` messages.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import case, func, select, tuple_, update
from sqlalchemy.orm import Session

from app.audit import record
from app.errors import TokenDecryptionError
from app.models import AccountStatus, PlatformAccount, Post, PostStatus
from app.notifications import notify
from app.posts import ReviewReason
from app.provider_holds import active_hold, report_problem
from app.providers.base import AccountCredentials, Publisher, PublishResult
from app.providers.errors import (
    AuthError,
    OperatorProblem,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.runtime import Runtime

logger = logging.getLogger(__name__)

#: How far ahead of its time a post is claimed and handed to the broker.
DEFAULT_DISPATCH_HORIZON = timedelta(minutes=2)
#: Calls to the platform for one post (one per claim) after which it waits for review.
DEFAULT_MAX_PUBLISH_ATTEMPTS = 5
#: Backoff before the first retry of a temporary error, in seconds; doubled per attempt.
DEFAULT_MIN_BACKOFF = 2
#: The most backoff before one retry of a temporary error, in seconds.
DEFAULT_MAX_BACKOFF = 300
#: When to retry after a 429 that named no reset time.
DEFAULT_RATE_LIMIT_WAIT = timedelta(seconds=60)
#: An access token expiring within this is refreshed before publishing.
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)
#: Reconciliation looks this far before the publish started (clock skew with the platform).
DEFAULT_RECONCILE_SLACK = timedelta(minutes=1)
#: A queued post this far past its time (or its retry time) has lost its message.
DEFAULT_QUEUED_GRACE = timedelta(minutes=3)
#: A post publishing for longer than this belongs to a worker that died mid-call.
DEFAULT_PUBLISHING_LEASE = timedelta(minutes=2)
#: Posts waiting for review (per user) from which the user is told the queue is growing.
DEFAULT_REVIEW_ALERT_THRESHOLD = 5
#: At most one "review queue growing" notification per user in this interval.
DEFAULT_REVIEW_ALERT_INTERVAL = timedelta(days=1)
#: Posts claimed per UPDATE statement by the dispatcher and the sweeper.
DEFAULT_CLAIM_BATCH = 500
#: Characters of a platform error message kept in ``Post.last_error``.
DEFAULT_ERROR_LENGTH = 1000

NOTIFY_REAUTH = "account_needs_reauth"
NOTIFY_REVIEW_QUEUE = "review_queue_growing"


@dataclass(frozen=True)
class Dispatch:
    """One post to send to the posting queue, to be handled just before ``due_at``."""

    post_id: int
    claim_token: str
    due_at: datetime


@dataclass(frozen=True)
class PublishOutcome:
    """What :func:`publish_post` did. On ``"retry"`` send ``claim_token`` again at ``retry_at``."""

    kind: Literal["published", "retry", "review", "skipped"]
    retry_at: datetime | None = None
    claim_token: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class _Claim:
    """The post as claimed for publishing: what the rest of the attempt needs."""

    post_id: int
    user_id: int
    platform: str
    text: str
    scheduled_at: datetime
    attempts: int
    started_at: datetime
    token: str


class _RefreshFailed(Exception):
    """A token refresh failed for a reason other than refusal: nothing was published."""


# -- pure logic ---------------------------------------------------------------------------


def new_claim_token() -> str:
    return uuid.uuid4().hex


def retry_backoff(attempts: int, *, uniform: Callable[[float, float], float] = random.uniform) -> timedelta:
    """Delay before retrying a temporary error after ``attempts`` calls: exponential, capped,
    with +-50 % jitter so posts failing together do not retry together."""
    base = min(DEFAULT_MIN_BACKOFF * 2 ** min(max(attempts, 0), 30), DEFAULT_MAX_BACKOFF)
    return timedelta(seconds=base * uniform(0.5, 1.5))


def stale_at(scheduled_at: datetime, grace_minutes: int) -> datetime:
    """The instant after which a post is no longer published but reviewed."""
    return scheduled_at + timedelta(minutes=grace_minutes)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:DEFAULT_ERROR_LENGTH]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- transitions ----------------------------------------------------------------------------


def _move(session: Session, post_id: int, *, expected: str, token: str, **values: Any) -> bool:
    """The conditional UPDATE behind every transition of a claimed post; False if it lost."""
    result = session.execute(
        update(Post)
        .where(Post.id == post_id, Post.status == expected, Post.claim_token == token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def review_queue_size(session: Session, *, user_id: int | None = None) -> int:
    """Posts waiting in ``needs_review`` (for one user, or for everyone)."""
    query = select(func.count()).select_from(Post).where(Post.status == PostStatus.NEEDS_REVIEW)
    if user_id is not None:
        query = query.where(Post.user_id == user_id)
    return session.scalar(query) or 0


def _alert_review_queue(session: Session, user_id: int, now: datetime) -> None:
    size = review_queue_size(session, user_id=user_id)
    if size >= DEFAULT_REVIEW_ALERT_THRESHOLD:
        notify(session, user_id, NOTIFY_REVIEW_QUEUE, f"{size} posts are waiting for your review",
               f"{size} posts could not be published automatically and wait for your decision "
               "(approve, edit, reschedule or cancel) in the review queue.",
               dedupe_since=now - DEFAULT_REVIEW_ALERT_INTERVAL, now=now)


def _review(session: Session, claim: _Claim, reason: str, error: str, now: datetime,
            *, expected: str = PostStatus.PUBLISHING) -> PublishOutcome:
    """Hand a claimed post to the review queue, only while this claim still holds it."""
    if not _move(session, claim.post_id, expected=expected, token=claim.token,
                 status=PostStatus.NEEDS_REVIEW, review_reason=reason, last_error=error,
                 claim_token=None):
        return _lost(claim)
    record(session, "post.reviewed", user_id=claim.user_id, post_id=claim.post_id,
           details={"reason": reason, "error": error})
    _alert_review_queue(session, claim.user_id, now)
    return PublishOutcome("review", detail=f"{reason}: {error}")


def _lost(claim: _Claim) -> PublishOutcome:
    logger.warning("post %s: claim %s was superseded during the attempt", claim.post_id, claim.token)
    return PublishOutcome("skipped", detail="the claim was superseded during the attempt")


def _retry(session: Session, claim: _Claim, retry_at: datetime, error: str, now: datetime,
           grace_minutes: int) -> PublishOutcome:
    """Back to ``queued`` under a new claim token, due at ``retry_at``; stale -> review."""
    if retry_at > stale_at(claim.scheduled_at, grace_minutes):
        return _review(session, claim, ReviewReason.STALE,
                       f"{error}; the next attempt ({retry_at.isoformat()}) would be more than "
                       f"{grace_minutes} minutes late", now)
    token = new_claim_token()
    if not _move(session, claim.post_id, expected=PostStatus.PUBLISHING, token=claim.token,
                 status=PostStatus.QUEUED, claim_token=token, queued_at=retry_at, last_error=error):
        return _lost(claim)
    record(session, "post.retry", user_id=claim.user_id, post_id=claim.post_id,
           details={"error": error, "retry_at": retry_at.isoformat(), "attempts": claim.attempts})
    return PublishOutcome("retry", retry_at=retry_at, claim_token=token, detail=error)


def _published(session: Session, claim: _Claim, result: PublishResult, done: datetime, *,
               action: str = "post.published", error: str | None = None) -> PublishOutcome:
    """Record a post that exists on the platform (published, or found by reconciliation)."""
    values: dict[str, Any] = {"status": PostStatus.PUBLISHED, "external_id": result.external_id,
                              "published_at": done, "last_error": error, "review_reason": None,
                              "claim_token": None}
    moved = _move(session, claim.post_id, expected=PostStatus.PUBLISHING, token=claim.token, **values)
    if not moved:
        # The sweeper took this worker for dead and sent the post to review while the call was
        # in flight; the platform has since answered, so the review has nothing left to decide.
        moved = session.execute(
            update(Post)
            .where(Post.id == claim.post_id, Post.status == PostStatus.NEEDS_REVIEW,
                   Post.review_reason == ReviewReason.OUTCOME_UNKNOWN,
                   Post.publish_started_at == claim.started_at)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount == 1  # type: ignore[attr-defined]
    if not moved:
        current = session.execute(
            select(Post.status, Post.external_id).where(Post.id == claim.post_id)).first()
        if current is not None and tuple(current) == (PostStatus.PUBLISHED, result.external_id):
            return PublishOutcome("published", detail=f"{result.external_id} (already recorded)")
    details = {"external_id": result.external_id, "url": result.url, "attempts": claim.attempts,
               "lateness_seconds": round((done - claim.scheduled_at).total_seconds(), 3)}
    if not moved:
        # Live on the platform, yet the row moved on (reconciled meanwhile): keep the id on record.
        details["conflict"] = "the post's row had moved on; not updated"
    record(session, action, user_id=claim.user_id, post_id=claim.post_id, details=details)
    return PublishOutcome("published", detail=result.external_id)


def _flag_reauth(session: Session, account_id: int, user_id: int, platform: str, error: str,
                 now: datetime) -> None:
    """Mark the account as needing re-authorisation; tell the user once until reconnected."""
    flipped = session.execute(
        update(PlatformAccount)
        .where(PlatformAccount.id == account_id, PlatformAccount.status == AccountStatus.ACTIVE)
        .values(status=AccountStatus.NEEDS_REAUTH)
        .execution_options(synchronize_session=False)
    ).rowcount == 1  # type: ignore[attr-defined]
    if flipped:
        record(session, "account.needs_reauth", user_id=user_id,
               details={"platform": platform, "error": error})
    first = session.execute(
        update(PlatformAccount)
        .where(PlatformAccount.id == account_id, PlatformAccount.status == AccountStatus.NEEDS_REAUTH,
               PlatformAccount.reauth_notified_at.is_(None))
        .values(reauth_notified_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1  # type: ignore[attr-defined]
    if first:
        name = {"twitter": "X"}.get(platform, platform.capitalize())
        notify(session, user_id, NOTIFY_REAUTH, f"Reconnect your {name} account",
               f"{name} refused the autopilot's access ({error}). Posts for {name} wait in the "
               "review queue until you reconnect the account.", severity="error", now=now)


# -- dispatch -------------------------------------------------------------------------------


def dispatch_due_posts(runtime: Runtime, now: datetime,
                       horizon: timedelta = DEFAULT_DISPATCH_HORIZON) -> list[Dispatch]:
    """Claim every scheduled post due by ``now + horizon``: ``scheduled -> queued``.

    Posts more than the stale grace overdue go to review instead. Each claimed post gets its
    own claim token; rows claimed by a concurrent dispatcher are skipped. One SELECT and one
    UPDATE per batch of posts, whatever their number.
    """
    grace = runtime.settings.stale_grace_minutes
    stale_before = now - timedelta(minutes=grace)
    due_by = now + horizon
    with runtime.session_factory() as session, session.begin():
        due = session.execute(
            select(Post.id, Post.scheduled_at)
            .where(Post.status == PostStatus.SCHEDULED, Post.scheduled_at <= due_by)
            .order_by(Post.scheduled_at, Post.id)
        ).all()
        stale_ids = [row.id for row in due if row.scheduled_at < stale_before]
        fresh_ids = [row.id for row in due if row.scheduled_at >= stale_before]
        if stale_ids:
            _review_stale_scheduled(session, stale_ids, stale_before, now, grace)
        dispatches: list[Dispatch] = []
        for chunk in _chunks(fresh_ids, DEFAULT_CLAIM_BATCH):
            tokens = {post_id: new_claim_token() for post_id in chunk}
            claimed = session.execute(
                update(Post)
                .where(Post.id.in_(chunk), Post.status == PostStatus.SCHEDULED,
                       Post.scheduled_at >= stale_before, Post.scheduled_at <= due_by)
                .values(status=PostStatus.QUEUED, queued_at=now, claim_token=case(tokens, value=Post.id))
                .returning(Post.id, Post.user_id, Post.scheduled_at)
                .execution_options(synchronize_session=False)
            ).all()
            for row in claimed:
                dispatches.append(Dispatch(row.id, tokens[row.id], row.scheduled_at))
                record(session, "post.queued", user_id=row.user_id, post_id=row.id,
                       details={"due_at": row.scheduled_at.isoformat()})
    dispatches.sort(key=lambda d: (d.due_at, d.post_id))
    return dispatches


def _review_stale_scheduled(session: Session, post_ids: list[int], stale_before: datetime,
                            now: datetime, grace: int) -> None:
    error = f"not published: more than {grace} minutes past its time when dispatched"
    users: set[int] = set()
    for chunk in _chunks(post_ids, DEFAULT_CLAIM_BATCH):
        moved = session.execute(
            update(Post)
            .where(Post.id.in_(chunk), Post.status == PostStatus.SCHEDULED,
                   Post.scheduled_at < stale_before)
            .values(status=PostStatus.NEEDS_REVIEW, review_reason=ReviewReason.STALE,
                    last_error=error, claim_token=None)
            .returning(Post.id, Post.user_id)
            .execution_options(synchronize_session=False)
        ).all()
        for row in moved:
            users.add(row.user_id)
            record(session, "post.reviewed", user_id=row.user_id, post_id=row.id,
                   details={"reason": ReviewReason.STALE, "error": error})
    for user_id in sorted(users):
        _alert_review_queue(session, user_id, now)


# -- publish --------------------------------------------------------------------------------


def publish_post(runtime: Runtime, post_id: int, claim_token: str, now: datetime) -> PublishOutcome:
    """Publish the post held by ``claim_token`` exactly once; see the module docstring.

    Returns ``"skipped"`` without touching the platform when the token no longer holds the
    post (duplicate delivery, cancelled, superseded by a retry or the sweeper).
    """
    settings = runtime.settings
    with runtime.session_factory() as session:
        with session.begin():
            claim = _claim(session, post_id, claim_token, now)
            if claim is None:
                return PublishOutcome("skipped", detail=_why_not_claimed(session, post_id))
        # The claim is committed: from here a redelivered message is skipped.

        with session.begin():
            if now > stale_at(claim.scheduled_at, settings.stale_grace_minutes):
                late = now - claim.scheduled_at
                return _review(session, claim, ReviewReason.STALE,
                               f"not published: {late} late, past the {settings.stale_grace_minutes}"
                               "-minute grace", now)
            try:
                publisher = runtime.providers.publisher(claim.platform)
            except KeyError:
                return _review(session, claim, ReviewReason.PERMANENT_ERROR,
                               f"no publisher is configured for {claim.platform!r}", now)
            account = session.scalar(
                select(PlatformAccount).where(PlatformAccount.user_id == claim.user_id,
                                              PlatformAccount.platform == claim.platform))
            if account is None:
                return _review(session, claim, ReviewReason.NEEDS_REAUTH,
                               f"no {claim.platform} account is connected", now)
            hold = active_hold(session, publisher.name, now)
            if hold is not None:  # an operator problem: wait for its end, or review when stale
                return _retry(session, claim, hold.until, f"{publisher.name} paused: {hold.detail}",
                              now, settings.stale_grace_minutes)
            if account.status != AccountStatus.ACTIVE:
                error = f"the {claim.platform} account is {account.status}"
                if account.status == AccountStatus.NEEDS_REAUTH:
                    _flag_reauth(session, account.id, claim.user_id, claim.platform, error, now)
                return _review(session, claim, ReviewReason.NEEDS_REAUTH, error, now)
            try:
                creds = runtime.vault.credentials(account)
            except TokenDecryptionError as exc:
                return _review(session, claim, ReviewReason.NEEDS_REAUTH, _describe(exc), now)
        # No transaction is open across the platform calls below.

        refreshed = False
        if (creds.refresh_token and creds.expires_at is not None
                and creds.expires_at <= now + DEFAULT_REFRESH_MARGIN):
            try:
                creds = _refresh(runtime, publisher, creds)
                refreshed = True
            except AuthError as exc:
                with session.begin():
                    return _reauth(session, claim, creds.account_id, _describe(exc), now)
            except OperatorProblem as exc:
                with session.begin():
                    return _operator_problem(runtime, session, claim, exc, now)
            except _RefreshFailed as exc:
                with session.begin():
                    return _after_not_sent(runtime, session, claim, exc.__cause__ or exc)

        try:
            result = _publish_refreshing_once(runtime, publisher, creds, claim.text,
                                              may_refresh=not refreshed)
        except AuthError as exc:
            with session.begin():
                return _reauth(session, claim, creds.account_id, _describe(exc), now)
        except OperatorProblem as exc:
            with session.begin():
                return _operator_problem(runtime, session, claim, exc, now)
        except PermanentError as exc:
            with session.begin():
                return _review(session, claim, ReviewReason.PERMANENT_ERROR, _describe(exc), now)
        except (RateLimited, TemporaryError) as exc:
            with session.begin():
                return _after_not_sent(runtime, session, claim, exc)
        except _RefreshFailed as exc:
            with session.begin():
                return _after_not_sent(runtime, session, claim, exc.__cause__ or exc)
        except Exception as exc:  # noqa: BLE001 - OutcomeUnknown, or unclassified: may have been sent
            logger.warning("post %s: outcome unknown after %s; reconciling", post_id, _describe(exc))
            found, note = _look_for(publisher, creds, claim)
            error = f"{_describe(exc)}; {note}"
            with session.begin():
                if found is not None:
                    return _published(session, claim, found, runtime.now(),
                                      action="post.reconciled", error=error)
                return _review(session, claim, ReviewReason.OUTCOME_UNKNOWN, error, now)

        with session.begin():
            return _published(session, claim, result, runtime.now())


def _claim(session: Session, post_id: int, token: str, now: datetime) -> _Claim | None:
    row = session.execute(
        update(Post)
        .where(Post.id == post_id, Post.status == PostStatus.QUEUED, Post.claim_token == token)
        .values(status=PostStatus.PUBLISHING, publish_started_at=now, attempts=Post.attempts + 1)
        .returning(Post.user_id, Post.platform, Post.text, Post.scheduled_at, Post.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return None
    return _Claim(post_id=post_id, user_id=row.user_id, platform=row.platform, text=row.text,
                  scheduled_at=row.scheduled_at, attempts=row.attempts, started_at=now, token=token)


def _why_not_claimed(session: Session, post_id: int) -> str:
    status = session.scalar(select(Post.status).where(Post.id == post_id))
    if status is None:
        return "no such post"
    if status == PostStatus.QUEUED:
        return "the claim token was superseded"
    return f"the post is {status}"


def _publish_refreshing_once(runtime: Runtime, publisher: Publisher, creds: AccountCredentials,
                             text: str, *, may_refresh: bool) -> PublishResult:
    """Publish; on a refused token refresh it once and publish again within the same claim.

    A 401 means nothing was created, so the second call cannot duplicate the post.
    """
    try:
        return publisher.publish(creds, text)
    except AuthError:
        if not (may_refresh and creds.refresh_token):
            raise
    return publisher.publish(_refresh(runtime, publisher, creds), text)


def _refresh(runtime: Runtime, publisher: Publisher, creds: AccountCredentials) -> AccountCredentials:
    """Exchange the refresh token and store the new tokens; return fresh credentials.

    The account row is locked for the exchange: platforms that rotate refresh tokens (X)
    refuse the old one once used, so two workers refreshing at once would lock the user out.
    A worker that finds the tokens already changed by another uses those instead.
    Raises AuthError if the platform refuses, _RefreshFailed on any other failure.
    """
    vault = runtime.vault
    with runtime.session_factory() as session, session.begin():
        account = session.scalar(
            select(PlatformAccount).where(PlatformAccount.id == creds.account_id).with_for_update())
        if account is None:
            raise AuthError("the account was disconnected")
        current = vault.credentials(account)
        if current.access_token != creds.access_token:
            return current
        try:
            tokens = publisher.refresh(current)
        except (AuthError, OperatorProblem):
            raise
        except PermanentError as exc:  # invalid_grant and friends: the grant itself is gone
            raise AuthError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - nothing was published; the caller retries
            raise _RefreshFailed(f"token refresh failed: {_describe(exc)}") from exc
        vault.store_tokens(account, tokens)
        record(session, "account.token_refreshed", user_id=account.user_id,
               details={"platform": account.platform})
        return vault.credentials(account)


def _operator_problem(runtime: Runtime, session: Session, claim: _Claim, exc: OperatorProblem,
                      now: datetime) -> PublishOutcome:
    """Pause the provider and tell the operator (once); wait for the pause or review now."""
    until = report_problem(session, exc, runtime.now())
    if until is None:
        return _review(session, claim, ReviewReason.OPERATOR_PROBLEM, _describe(exc), now)
    return _retry(session, claim, until, _describe(exc), now, runtime.settings.stale_grace_minutes)


def _reauth(session: Session, claim: _Claim, account_id: int, error: str, now: datetime) -> PublishOutcome:
    _flag_reauth(session, account_id, claim.user_id, claim.platform, error, now)
    return _review(session, claim, ReviewReason.NEEDS_REAUTH, error, now)


def _after_not_sent(runtime: Runtime, session: Session, claim: _Claim,
                    exc: BaseException) -> PublishOutcome:
    """Retry an attempt known to have created nothing: at the reset time, or with backoff."""
    now = runtime.now()
    grace = runtime.settings.stale_grace_minutes
    error = _describe(exc)
    if isinstance(exc, RateLimited):
        retry_at = exc.reset_at if exc.reset_at is not None else now + DEFAULT_RATE_LIMIT_WAIT
        return _retry(session, claim, max(retry_at, now), error, now, grace)
    if claim.attempts >= DEFAULT_MAX_PUBLISH_ATTEMPTS:
        return _review(session, claim, ReviewReason.RETRIES_EXHAUSTED,
                       f"{error} (after {claim.attempts} attempts)", now)
    return _retry(session, claim, now + retry_backoff(claim.attempts), error, now, grace)


def _look_for(publisher: Publisher, creds: AccountCredentials,
              claim: _Claim) -> tuple[PublishResult | None, str]:
    """Ask the platform whether the post exists; never publishes. Returns (found, note)."""
    since = claim.started_at - DEFAULT_RECONCILE_SLACK
    try:
        found = publisher.find_published(creds, claim.text, since)
    except NotImplementedError as exc:
        why = f": {exc}" if str(exc) else ""
        return None, f"{claim.platform} offers no way to check whether it was published{why}"
    except Exception as exc:  # noqa: BLE001 - a failed check is an unknown outcome, not a crash
        return None, f"checking whether it was published failed: {_describe(exc)}"
    if found is None:
        return None, f"not found on {claim.platform} since {since.isoformat()}"
    return found, f"found on {claim.platform} as {found.external_id}"


# -- sweep ----------------------------------------------------------------------------------


def sweep_stuck_posts(
    runtime: Runtime,
    now: datetime,
    *,
    queued_grace: timedelta = DEFAULT_QUEUED_GRACE,
    publishing_lease: timedelta = DEFAULT_PUBLISHING_LEASE,
) -> list[Dispatch]:
    """The safety net: re-dispatch lost messages, reconcile dead workers' posts, catch up.

    * ``queued`` past its time (or retry time) by ``queued_grace``: its message was lost.
      It gets a new claim token (the old message, should it turn up, is skipped) and is
      returned for sending, or goes to review when past the stale grace.
    * ``publishing`` for longer than ``publishing_lease``: its worker died mid-call. The
      platform is asked whether the post exists, exactly as after an unknown outcome.
    * ``scheduled`` and due: :func:`dispatch_due_posts`.
    """
    dispatches = _redispatch_lost(runtime, now, now - queued_grace)
    _reconcile_abandoned(runtime, now, now - publishing_lease)
    merged = {d.post_id: d for d in dispatch_due_posts(runtime, now)}
    merged.update({d.post_id: d for d in dispatches})
    return sorted(merged.values(), key=lambda d: (d.due_at, d.post_id))


def _redispatch_lost(runtime: Runtime, now: datetime, cutoff: datetime) -> list[Dispatch]:
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
                claim = _Claim(row.id, row.user_id, row.platform, row.text, row.scheduled_at,
                               row.attempts, row.publish_started_at or now, row.claim_token or "")
                _review(session, claim, ReviewReason.STALE,
                        f"its message was lost and it is more than {grace} minutes late", now,
                        expected=PostStatus.QUEUED)
            else:
                resend.append(row)
        dispatches: list[Dispatch] = []
        for chunk in _chunks(resend, DEFAULT_CLAIM_BATCH):
            tokens = {row.id: new_claim_token() for row in chunk}
            moved = session.execute(
                update(Post)
                .where(tuple_(Post.id, Post.claim_token).in_([(r.id, r.claim_token) for r in chunk]),
                       Post.status == PostStatus.QUEUED)
                .values(claim_token=case(tokens, value=Post.id), queued_at=now)
                .returning(Post.id, Post.user_id)
                .execution_options(synchronize_session=False)
            ).all()
            due = {r.id: max(now, r.scheduled_at, r.queued_at or now) for r in chunk}
            for post_id, owner in moved:
                # Never early: a post re-sent before its time still waits for its second.
                dispatches.append(Dispatch(post_id, tokens[post_id], due[post_id]))
                record(session, "post.requeued", user_id=owner, post_id=post_id,
                       details={"reason": "message lost"})
    return dispatches


def _reconcile_abandoned(runtime: Runtime, now: datetime, started_before: datetime) -> None:
    with runtime.session_factory() as session:
        with session.begin():
            rows = session.execute(
                select(Post, PlatformAccount)
                .outerjoin(PlatformAccount, (PlatformAccount.user_id == Post.user_id)
                           & (PlatformAccount.platform == Post.platform))
                .where(Post.status == PostStatus.PUBLISHING, Post.publish_started_at < started_before)
                .order_by(Post.publish_started_at, Post.id)
            ).all()
            work = []
            for post, account in rows:
                claim = _Claim(post.id, post.user_id, post.platform, post.text, post.scheduled_at,
                               post.attempts, post.publish_started_at or now, post.claim_token or "")
                creds: AccountCredentials | None = None
                if account is not None:
                    try:
                        creds = runtime.vault.credentials(account)
                    except TokenDecryptionError:
                        creds = None
                work.append((claim, creds))
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
                found, note = _look_for(publisher, creds, claim)
            with session.begin():
                if found is not None:
                    _published(session, claim, found, runtime.now(), action="post.reconciled",
                               error=f"{error}; {note}")
                else:
                    _review(session, claim, ReviewReason.OUTCOME_UNKNOWN, f"{error}; {note}", now)


def publish_target(runtime: Runtime, post_id: int) -> tuple[str, int] | None:
    """(platform, user id) of a post: what the actor's per-account rate limiter is keyed on."""
    with runtime.session_factory() as session:
        row = session.execute(select(Post.platform, Post.user_id).where(Post.id == post_id)).first()
    return (row[0], row[1]) if row is not None else None
