"""Publishing one post exactly once: claim it, call the platform, record what happened.

* The ``publishing`` claim is committed before the platform is called. From then on the
  request may reach the platform, so a failure whose effect is unknown (timeout after sending,
  any unclassified exception, a worker dying mid-call) is never retried: the platform is asked
  whether the post exists (:func:`look_for`) and otherwise a person decides.
* Errors known to create nothing (429, temporary errors, an expired token) are retried with a
  new claim token; the actor sends the new token with a delay to ``retry_at``.
* No post goes out more than ``Settings.stale_grace_minutes`` after its time: past that it
  waits for review instead (a morning post published at midnight does more harm than good).

The states and moves are :mod:`app.lifecycle`'s; token refresh and re-authorisation are
:mod:`app.workflows.accounts`'.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import TokenDecryptionError
from app.lifecycle import (
    Claim,
    PublishOutcome,
    claim_for_publishing,
    describe,
    move,
    new_claim_token,
    record_published,
    retry,
    review,
    stale_at,
)
from app.models import AccountStatus, PlatformAccount, Post, PostStatus, ReviewReason
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
from app.workflows.accounts import RefreshFailed, flag_reauth, refresh_tokens

__all__ = [
    "DEFAULT_MAX_BACKOFF", "DEFAULT_MAX_PUBLISH_ATTEMPTS", "DEFAULT_MIN_BACKOFF", "DEFAULT_RATE_LIMIT_WAIT",
    "DEFAULT_RECONCILE_SLACK", "DEFAULT_REFRESH_MARGIN", "look_for", "postpone", "publish_post", "publish_target",
    "retry_backoff",
]

logger = logging.getLogger(__name__)

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


def retry_backoff(attempts: int, *, uniform: Callable[[float, float], float] = random.uniform) -> timedelta:
    """Delay before retrying a temporary error after ``attempts`` calls: exponential, capped,
    with +-50 % jitter so posts failing together do not retry together."""
    base = min(DEFAULT_MIN_BACKOFF * 2 ** min(max(attempts, 0), 30), DEFAULT_MAX_BACKOFF)
    return timedelta(seconds=base * uniform(0.5, 1.5))


def publish_target(runtime: Runtime, post_id: int) -> tuple[str, int] | None:
    """(platform, user id) of a post: what the actor's per-account rate limiter is keyed on."""
    with runtime.session_factory() as session:
        row = session.execute(select(Post.platform, Post.user_id).where(Post.id == post_id)).first()
    return (row[0], row[1]) if row is not None else None


def postpone(runtime: Runtime, post_id: int, claim_token: str, retry_at: datetime) -> str | None:
    """Keep a queued post waiting until ``retry_at`` (our own rate limit said no) under a new token.

    Returns the new token to send, or None when ``claim_token`` no longer holds the post. A new
    token means a new message id, so recovery never confuses the old message with the new one.
    """
    token = new_claim_token()
    with runtime.session_factory() as session, session.begin():
        if not move(session, post_id, source=PostStatus.QUEUED, target=PostStatus.QUEUED, token=claim_token,
                    claim_token=token, queued_at=retry_at):
            return None
    return token


def publish_post(runtime: Runtime, post_id: int, claim_token: str, now: datetime) -> PublishOutcome:
    """Publish the post held by ``claim_token`` exactly once; see the module docstring.

    Returns ``"skipped"`` without touching the platform when the token no longer holds the
    post (duplicate delivery, cancelled, superseded by a retry or the sweeper).
    """
    settings = runtime.settings
    with runtime.session_factory() as session:
        with session.begin():
            claim = claim_for_publishing(session, post_id, claim_token, now)
            if claim is None:
                return PublishOutcome("skipped", detail=_why_not_claimed(session, post_id))
        # The claim is committed: from here a redelivered message is skipped.

        with session.begin():
            if now > stale_at(claim.scheduled_at, settings.stale_grace_minutes):
                late = now - claim.scheduled_at
                return review(session, claim, ReviewReason.STALE,
                              f"not published: {late} late, past the {settings.stale_grace_minutes}"
                              "-minute grace", now)
            try:
                publisher = runtime.providers.publisher(claim.platform)
            except KeyError:
                return review(session, claim, ReviewReason.PERMANENT_ERROR,
                              f"no publisher is configured for {claim.platform!r}", now)
            account = session.scalar(
                select(PlatformAccount).where(PlatformAccount.user_id == claim.user_id,
                                              PlatformAccount.platform == claim.platform))
            if account is None:
                return review(session, claim, ReviewReason.NEEDS_REAUTH,
                              f"no {claim.platform} account is connected", now)
            hold = active_hold(session, publisher.name, now)
            if hold is not None:  # an operator problem: wait for its end, or review when stale
                return retry(session, claim, hold.until, f"{publisher.name} paused: {hold.detail}",
                             now, settings.stale_grace_minutes)
            if account.status != AccountStatus.ACTIVE:
                error = f"the {claim.platform} account is {account.status}"
                if account.status == AccountStatus.NEEDS_REAUTH:
                    flag_reauth(session, account.id, claim.user_id, claim.platform, error, now)
                return review(session, claim, ReviewReason.NEEDS_REAUTH, error, now)
            try:
                creds = runtime.vault.credentials(account)
            except TokenDecryptionError as exc:
                return review(session, claim, ReviewReason.NEEDS_REAUTH, describe(exc), now)
        # No transaction is open across the platform calls below.

        refreshed = False
        if (creds.refresh_token and creds.expires_at is not None
                and creds.expires_at <= now + DEFAULT_REFRESH_MARGIN):
            try:
                creds = refresh_tokens(runtime, publisher, creds)
                refreshed = True
            except NOT_SENT as exc:
                with session.begin():
                    return _not_sent(runtime, session, claim, creds.account_id, exc, now)

        try:
            result = _publish_refreshing_once(runtime, publisher, creds, claim.text,
                                              may_refresh=not refreshed)
        except NOT_SENT as exc:
            with session.begin():
                return _not_sent(runtime, session, claim, creds.account_id, exc, now)
        except Exception as exc:  # noqa: BLE001 - OutcomeUnknown, or unclassified: may have been sent
            logger.warning("post %s: outcome unknown after %s; reconciling", post_id, describe(exc))
            found, note = look_for(publisher, creds, claim)
            error = f"{describe(exc)}; {note}"
            with session.begin():
                if found is not None:
                    return record_published(session, claim, found, runtime.now(),
                                            action="post.reconciled", error=error)
                return review(session, claim, ReviewReason.OUTCOME_UNKNOWN, error, now)

        with session.begin():
            return record_published(session, claim, result, runtime.now())


def look_for(publisher: Publisher, creds: AccountCredentials, claim: Claim) -> tuple[PublishResult | None, str]:
    """Ask the platform whether the post exists; never publishes. Returns (found, note)."""
    since = claim.started_at - DEFAULT_RECONCILE_SLACK
    try:
        found = publisher.find_published(creds, claim.text, since)
    except NotImplementedError as exc:
        why = f": {exc}" if str(exc) else ""
        return None, f"{claim.platform} offers no way to check whether it was published{why}"
    except Exception as exc:  # noqa: BLE001 - a failed check is an unknown outcome, not a crash
        return None, f"checking whether it was published failed: {describe(exc)}"
    if found is None:
        return None, f"not found on {claim.platform} since {since.isoformat()}"
    return found, f"found on {claim.platform} as {found.external_id}"


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
    return publisher.publish(refresh_tokens(runtime, publisher, creds), text)


#: Failures known to have created nothing on the platform: safe to retry or hand to a person.
NOT_SENT = (AuthError, PermanentError, RateLimited, TemporaryError, RefreshFailed)


def _not_sent(runtime: Runtime, session: Session, claim: Claim, account_id: int, exc: BaseException,
              now: datetime) -> PublishOutcome:
    """The outcome of an attempt that created nothing (a refresh or a publish refused)."""
    if isinstance(exc, AuthError):
        return _reauth(session, claim, account_id, describe(exc), now)
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


def _reauth(session: Session, claim: Claim, account_id: int, error: str, now: datetime) -> PublishOutcome:
    flag_reauth(session, account_id, claim.user_id, claim.platform, error, now)
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
