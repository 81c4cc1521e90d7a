"""What a publish attempt known to have created nothing leads to: retry, pause or review.

:mod:`app.workflows.publish` calls the platform; when the call (or the token refresh before it)
fails in a way that proves nothing was published, this module decides what happens to the
post: a 429 waits for the platform's reset, a temporary error backs off (bounded, jittered),
a refused token flags the account for re-authorisation, a problem only the operator can fix
pauses the provider, and a permanent refusal goes to review.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.connect import accounts_page_url
from app.lifecycle import Claim, PublishOutcome, describe, retry, review
from app.models import ReviewReason
from app.provider_holds import report_problem
from app.providers.errors import (
    AuthError,
    OperatorProblem,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.runtime import Runtime
from app.workflows.accounts import RefreshFailed, flag_reauth

__all__ = [
    "DEFAULT_MAX_BACKOFF", "DEFAULT_MAX_PUBLISH_ATTEMPTS", "DEFAULT_MIN_BACKOFF", "DEFAULT_RATE_LIMIT_WAIT",
    "NOT_SENT", "not_sent", "retry_backoff",
]

#: Calls to the platform for one post (one per claim) after which it waits for review.
DEFAULT_MAX_PUBLISH_ATTEMPTS = 5
#: Backoff before the first retry of a temporary error, in seconds; doubled per attempt.
DEFAULT_MIN_BACKOFF = 2
#: The most backoff before one retry of a temporary error, in seconds.
DEFAULT_MAX_BACKOFF = 300
#: When to retry after a 429 that named no reset time.
DEFAULT_RATE_LIMIT_WAIT = timedelta(seconds=60)


def retry_backoff(attempts: int, *, uniform: Callable[[float, float], float] = random.uniform) -> timedelta:
    """Delay before retrying a temporary error after ``attempts`` calls: exponential, capped,
    with +-50 % jitter so posts failing together do not retry together."""
    base = min(DEFAULT_MIN_BACKOFF * 2 ** min(max(attempts, 0), 30), DEFAULT_MAX_BACKOFF)
    return timedelta(seconds=base * uniform(0.5, 1.5))


#: Failures known to have created nothing on the platform: safe to retry or hand to a person.
NOT_SENT = (AuthError, PermanentError, RateLimited, TemporaryError, RefreshFailed)


def not_sent(runtime: Runtime, session: Session, claim: Claim, account_id: int, exc: BaseException,
             now: datetime) -> PublishOutcome:
    """The outcome of an attempt that created nothing (a refresh or a publish refused)."""
    if isinstance(exc, AuthError):
        return _reauth(session, claim, account_id, describe(exc), now, accounts_page_url(runtime.settings))
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
