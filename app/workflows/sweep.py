"""The quarter-hour safety net: what the minute's recovery would do, plus the slower chores.

The minute job (:mod:`app.workflows.dispatch`) already re-sends lost messages and reconciles
interrupted publishes within seconds (:mod:`app.workflows.recovery`); the sweep runs the same
recovery again, then dispatches due ``scheduled`` posts as the minute's dispatch would, so a
minute job that stopped running entirely still leaves nothing stuck for more than a quarter.

The sweep job (:data:`SWEEP_STUCK_POSTS`) also re-sends lost per-user runs, emails pending
notifications and prunes old slot claims, expired connect flows, portal sessions and sign-in
links, and the records of image uploads whose platform id expired, each a named step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from app.connect.flows import PRUNE_CONNECT_FLOWS
from app.intents import Intent, MessageProbe, PublishPosts
from app.jobs.spec import PeriodicJob, Step, Tick
from app.jobs.upkeep import PRUNE_OLD_CLAIMS
from app.notifications import send_daily_digests, send_pending_emails
from app.queues import Queue
from app.runtime import Runtime
from app.signin import PRUNE_PORTAL_SIGNINS
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.executions import REQUEUE_STALE_EXECUTIONS
from app.workflows.media_uploads import PRUNE_EXPIRED_UPLOADS
from app.workflows.recovery import recover_posts

__all__ = ["SWEEP_STUCK_POSTS", "sweep_stuck_posts"]


def sweep_stuck_posts(runtime: Runtime, now: datetime, *, messages: MessageProbe | None = None,
                      everything_lost: bool = False) -> list[PublishPosts]:
    """Recover lost messages and interrupted publishes, dispatch due posts (module doc).

    ``messages``: the broker's answer to "is this message alive?"; without it, messages are
    presumed lost only by time (see :mod:`app.workflows.recovery`).
    """
    # Disjoint: recovery re-sends queued posts, the dispatch claims scheduled ones.
    intents = recover_posts(runtime, now, messages, everything_lost=everything_lost).resent
    intents += dispatch_due_posts(runtime, now)
    return sorted(intents, key=lambda batch: (batch.due_at, batch.post_ids))


def _recover_posts(tick: Tick) -> Sequence[Intent]:
    return sweep_stuck_posts(tick.runtime, tick.now, messages=tick.messages,
                             everything_lost=tick.messages_lost)


def _send_emails(tick: Tick) -> Sequence[Intent]:
    if tick.runtime.settings.smtp_host:
        send_pending_emails(tick.runtime.session_factory, tick.runtime.settings, tick.now)
        send_daily_digests(tick.runtime.session_factory, tick.runtime.settings, tick.now)
    return []


RECOVER_STUCK_POSTS = Step(
    "recover_stuck_posts",
    "The minute's recovery once more (lost messages, interrupted publishes), then dispatch due "
    "posts: a safety net should the minute job stop",
    _recover_posts)

SEND_PENDING_EMAILS = Step(
    "send_pending_emails",
    "Email notifications not emailed yet, and the day's digests (when SMTP is configured)",
    _send_emails)

SWEEP_STUCK_POSTS = PeriodicJob(
    "sweep_stuck_posts", "*/15 * * * *", Queue.POSTING,
    "Safety net: recover stuck posts and per-user runs, send emails, prune old claims, expired sign-ins "
    "and expired uploads",
    steps=(RECOVER_STUCK_POSTS, REQUEUE_STALE_EXECUTIONS, SEND_PENDING_EMAILS, PRUNE_OLD_CLAIMS,
           PRUNE_CONNECT_FLOWS, PRUNE_PORTAL_SIGNINS, PRUNE_EXPIRED_UPLOADS),
    claim_retention=timedelta(days=7),
)
