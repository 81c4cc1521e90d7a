"""What a publish attempt leads to, recorded: published, retried, reviewed or paused.

:mod:`app.workflows.publish` claims the posts (:mod:`app.lifecycle`) and calls the platform;
this module records what came of each attempt. A success (or a post found by reconciliation)
is recorded as published with the platform's own time; a failure known to have created nothing
is decided here: a 429 waits for the platform's reset, a temporary error backs off (bounded,
jittered), a refused token flags the account for re-authorisation, a problem only the operator
can fix pauses the provider, and a permanent refusal goes to review, which tells the user when
their review queue grows. Every move names the claim it holds, so an attempt whose claim was
superseded meanwhile records nothing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, tuple_, update
from sqlalchemy.orm import Session

from app.audit import AuditEntry, record, record_many
from app.connect import accounts_page_url
from app.error_tracking import report_publish_failure
from app.lifecycle import Claim, move, new_claim_token, stale_at
from app.models import Post, PostStatus, ReviewReason, UserSettings
from app.notifications import Notice, notify_many
from app.platforms import display_name
from app.provider_holds import report_problem
from app.providers.base import PublishResult
from app.providers.errors import (
    AuthError,
    OperatorProblem,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.runtime import Runtime
from app.statuses import FAILURE_REVIEW_REASONS
from app.workflows.accounts import RefreshFailed, flag_reauth

__all__ = [
    "DEFAULT_ERROR_LENGTH", "DEFAULT_MAX_BACKOFF_SECONDS", "DEFAULT_MAX_PUBLISH_ATTEMPTS",
    "DEFAULT_MIN_BACKOFF_SECONDS", "DEFAULT_RATE_LIMIT_WAIT", "NOTIFY_REVIEW_QUEUE", "NOT_SENT",
    "PublishOutcome", "describe", "notify_sent_to_review", "not_sent", "record_published",
    "record_published_many", "retry", "retry_backoff", "review", "review_queue_size", "superseded",
]

logger = logging.getLogger(__name__)
S = PostStatus

#: Characters of a platform error message kept in ``Post.last_error``.
DEFAULT_ERROR_LENGTH = 1000
#: The notification kind of posts sent to review (its key predates the per-run notice and is
#: kept: users' email choices are stored under it).
NOTIFY_REVIEW_QUEUE = "review_queue_growing"
#: Failures a notice lists one by one (the rest are counted), with their text and error cut to these.
REVIEW_NOTICE_LISTED, REVIEW_NOTICE_TEXT_CHARS, REVIEW_NOTICE_ERROR_CHARS = 20, 60, 160


@dataclass(frozen=True)
class PublishOutcome:
    """What an attempt did. On ``"retry"`` send ``claim_token`` again at ``retry_at``."""

    kind: Literal["published", "retry", "review", "skipped"]
    retry_at: datetime | None = None
    claim_token: str | None = None
    detail: str = ""


def describe(exc: BaseException) -> str:
    """An error as stored on a post: its type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:DEFAULT_ERROR_LENGTH]


def review_queue_size(session: Session, *, user_id: int | None = None) -> int:
    """Posts waiting in ``needs_review`` (for one user, or for everyone)."""
    query = select(func.count()).select_from(Post).where(Post.status == S.NEEDS_REVIEW)
    if user_id is not None:
        query = query.where(Post.user_id == user_id)
    return session.scalar(query) or 0


def _why(reason: str, platform: str) -> str:
    """A failure reason in the user's words."""
    name = display_name(platform)
    reasons: dict[str, str] = {
        ReviewReason.PERMANENT_ERROR: f"{name} refused it",
        ReviewReason.OUTCOME_UNKNOWN: f"we could not tell whether {name} published it",
        ReviewReason.STALE: "it was too late to publish it",
        ReviewReason.NEEDS_REAUTH: f"your {name} account needs reconnecting",
        ReviewReason.RETRIES_EXHAUSTED: f"{name} kept failing",
        ReviewReason.OPERATOR_PROBLEM: f"{name} is unavailable to this service for now",
    }
    return reasons.get(reason, reason.replace("_", " "))


def notify_sent_to_review(session: Session, post_ids: Iterable[int], now: datetime) -> int:
    """Tell each user which of ``post_ids`` were sent to review for a failure, and why.

    Called once per run (a publish batch, a dispatch, a recovery pass) with every post it sent
    to review, so 40 failures of one user are one notification listing them, not 40. Posts
    waiting for the user's own approval are not failures and are left out. Three statements
    whatever the batch: the posts (with each user's zone), the users' email choices, one INSERT.
    How many notifications were added.
    """
    ids = sorted(set(post_ids))
    if not ids:
        return 0
    rows = session.execute(
        select(Post.id, Post.user_id, Post.platform, Post.text, Post.scheduled_at, Post.review_reason,
               Post.last_error, UserSettings.timezone)
        .outerjoin(UserSettings, UserSettings.user_id == Post.user_id)
        .where(Post.id.in_(ids), Post.status == S.NEEDS_REVIEW, Post.review_reason.in_(FAILURE_REVIEW_REASONS))
        .order_by(Post.user_id, Post.scheduled_at, Post.id)).all()
    notices = []
    for user_id, group in groupby(rows, key=lambda row: row.user_id):
        posts = list(group)
        lines = [_review_line(row) for row in posts[:REVIEW_NOTICE_LISTED]]
        if len(posts) > REVIEW_NOTICE_LISTED:
            lines.append(f"- and {len(posts) - REVIEW_NOTICE_LISTED} more in the review queue")
        count = f"{len(posts)} post{'s' if len(posts) != 1 else ''}"
        notices.append(Notice(
            user_id, NOTIFY_REVIEW_QUEUE, f"{count} sent to review",
            f"{count} could not be published automatically and wait for your decision (approve, "
            f"edit, reschedule or cancel) in your posts:\n" + "\n".join(lines)))
    return notify_many(session, notices, now)


def _review_line(row: Any) -> str:
    zone = ZoneInfo(row.timezone or "UTC")
    at = row.scheduled_at.astimezone(zone)
    text = row.text if len(row.text) <= REVIEW_NOTICE_TEXT_CHARS else row.text[:REVIEW_NOTICE_TEXT_CHARS - 3] + "..."
    error = f" ({row.last_error[:REVIEW_NOTICE_ERROR_CHARS]})" if row.last_error else ""
    return (f"- {display_name(row.platform)} post of {at:%a %d %b %H:%M} {at.tzname()}, \"{text}\": "
            f"{_why(row.review_reason, row.platform)}{error}")


def review(session: Session, claim: Claim, reason: ReviewReason, error: str, now: datetime,
           *, source: PostStatus = S.PUBLISHING) -> PublishOutcome:
    """Hand a claimed post to the review queue, only while this claim still holds it."""
    if not move(session, claim.post_id, source=source, target=S.NEEDS_REVIEW, token=claim.token,
                review_reason=reason, last_error=error, claim_token=None):
        return superseded(claim)
    record(session, "post.reviewed", user_id=claim.user_id, post_id=claim.post_id,
           details={"reason": reason, "error": error})
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


# -- failures known to have created nothing -------------------------------------------------

#: Calls to the platform for one post (one per claim) after which it waits for review.
DEFAULT_MAX_PUBLISH_ATTEMPTS = 5
#: Backoff before the first retry of a temporary error, in seconds; doubled per attempt.
DEFAULT_MIN_BACKOFF_SECONDS = 2
#: The most backoff before one retry of a temporary error, in seconds.
DEFAULT_MAX_BACKOFF_SECONDS = 300
#: When to retry after a 429 that named no reset time.
DEFAULT_RATE_LIMIT_WAIT = timedelta(seconds=60)


def retry_backoff(attempts: int, *, uniform: Callable[[float, float], float] = random.uniform) -> timedelta:
    """Delay before retrying a temporary error after ``attempts`` calls: exponential, capped,
    with +-50 % jitter so posts failing together do not retry together."""
    base = min(DEFAULT_MIN_BACKOFF_SECONDS * 2 ** min(max(attempts, 0), 30), DEFAULT_MAX_BACKOFF_SECONDS)
    return timedelta(seconds=base * uniform(0.5, 1.5))


#: Failures known to have created nothing on the platform: safe to retry or hand to a person.
NOT_SENT = (AuthError, PermanentError, RateLimited, TemporaryError, RefreshFailed)


def not_sent(runtime: Runtime, session: Session, claim: Claim, account_id: int, exc: BaseException,
             now: datetime) -> PublishOutcome:
    """The outcome of an attempt that created nothing (a refresh or a publish refused)."""
    if isinstance(exc, AuthError):
        return _reauth(session, claim, account_id, describe(exc), now,
                       accounts_page_url(runtime.settings))
    if isinstance(exc, OperatorProblem):  # before PermanentError: it is one
        return _operator_problem(runtime, session, claim, exc, now)
    if isinstance(exc, PermanentError):
        return review(session, claim, ReviewReason.PERMANENT_ERROR, describe(exc), now)
    if isinstance(exc, RefreshFailed):
        return _after_not_sent(runtime, session, claim, exc.__cause__ or exc)
    return _after_not_sent(runtime, session, claim, exc)


def _operator_problem(runtime: Runtime, session: Session, claim: Claim, exc: OperatorProblem,
                      now: datetime) -> PublishOutcome:
    """Pause the provider and tell the operator (once); wait for the pause or review now."""
    until = report_problem(session, exc, runtime.now())
    if until is None:
        return review(session, claim, ReviewReason.OPERATOR_PROBLEM, describe(exc), now)
    return retry(session, claim, until, describe(exc), now, runtime.settings.stale_grace_minutes)


def _reauth(session: Session, claim: Claim, account_id: int, error: str, now: datetime,
            accounts_url: str) -> PublishOutcome:
    flag_reauth(session, account_id, claim.user_id, claim.platform, error, now, accounts_url=accounts_url)
    return review(session, claim, ReviewReason.NEEDS_REAUTH, error, now)


def _after_not_sent(runtime: Runtime, session: Session, claim: Claim, exc: BaseException) -> PublishOutcome:
    """Retry an attempt known to have created nothing: at the reset time, or with backoff."""
    now = runtime.now()
    grace = runtime.settings.stale_grace_minutes
    error = describe(exc)
    if isinstance(exc, RateLimited):
        retry_at = exc.reset_at if exc.reset_at is not None else now + DEFAULT_RATE_LIMIT_WAIT
        return retry(session, claim, max(retry_at, now), error, now, grace)
    if claim.attempts >= DEFAULT_MAX_PUBLISH_ATTEMPTS:
        return review(session, claim, ReviewReason.RETRIES_EXHAUSTED,
                      f"{error} (after {claim.attempts} attempts)", now)
    return retry(session, claim, now + retry_backoff(claim.attempts), error, now, grace)
