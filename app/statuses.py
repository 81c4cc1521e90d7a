"""The statuses of posts, runs and accounts, and why a post waits for review: one StrEnum each.

A pure module (no SQLAlchemy), so the pure report arithmetic compares against the same members
the models store (:func:`app.models.enum_column` maps them to their values).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AccountStatus", "ExecutionStatus", "LateReason", "PostStatus", "ReviewReason"]


class AccountStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"
    REVOKED = "revoked"


class PostStatus(StrEnum):
    """A post's life: scheduled -> queued -> publishing -> published, or a side exit."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ReviewReason(StrEnum):
    """Why a post waits in ``needs_review``."""

    APPROVAL = "approval"  # the user asked to approve every generated post
    PERMANENT_ERROR = "permanent_error"
    OUTCOME_UNKNOWN = "outcome_unknown"
    STALE = "stale"
    NEEDS_REAUTH = "needs_reauth"
    RETRIES_EXHAUSTED = "retries_exhausted"
    OPERATOR_PROBLEM = "operator_problem"  # billing, a usage cap, a sunset API version


#: The review reasons that are failures: every one but the user's own approval queue.
FAILURE_REVIEW_REASONS = tuple(reason.value for reason in ReviewReason if reason != ReviewReason.APPROVAL)


class LateReason(StrEnum):
    """Why a ``queued`` or ``publishing`` post is past its time, as recovery last saw it.

    A queued post past its time with no reason recorded is simply waiting for its message.
    """

    RESENT = "resent"  # its message was lost; recovery re-sent it under a new claim token
    RECONCILING = "reconciling"  # its publish was interrupted; recovery is asking the platform


class ExecutionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
