"""Engagement metrics: a "24h" and a "7d" snapshot of every published post.

The 02:00 UTC job (:data:`METRICS_COLLECTION`) fans out one execution per user with posts due
(:func:`users_with_metrics_due`); each user's run (:func:`collect_metrics_for_user`) asks each
platform for the figures of the due posts, at most :data:`POSTS_PER_METRICS_CALL` ids per call,
stores one :class:`~app.models.MetricSnapshot` per post and age, and copies the figures onto
the post as its latest ones.

A post is due for its "24h" snapshot on the first daily run after it went out (published in
the last :data:`WINDOW_24H`) and for its "7d" one on the run between :data:`WINDOW_7D_START`
and :data:`WINDOW_7D_END` after. Consecutive daily runs cover consecutive windows, so each post
gets each snapshot once; re-running a day finds the snapshots and fetches nothing.

No transaction stays open across a provider call: the due posts are read in one transaction
and the figures written in another, which checks again for snapshots written in between (a
re-run racing this one) and inserts with ``ON CONFLICT DO NOTHING`` on (post_id, age).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from app.chunks import chunks
from app.db import insert_skipping_conflicts
from app.errors import TokenDecryptionError
from app.jobs.spec import PeriodicJob
from app.models import (
    MEASURABLE_AT,
    AccountStatus,
    MetricSnapshot,
    PlatformAccount,
    Post,
    WorkflowExecution,
)
from app.platforms import reports_impressions
from app.providers.base import PostMetrics
from app.providers.errors import ProviderError
from app.queues import Queue
from app.runtime import Runtime
from app.workflows.accounts import WARN_EXPIRING_ACCOUNTS, flag_reauth
from app.workflows.executions import fan_out_step, run_execution

logger = logging.getLogger(__name__)

WORKFLOW = "metrics_collection"
#: Most post ids sent in one ``fetch_metrics`` call (X's lookup allows 100 per request).
POSTS_PER_METRICS_CALL = 100
#: A post published this long before the run, or less, is due for its first snapshot.
WINDOW_24H = timedelta(hours=24)
#: A post published between these two ages before the run is due for its week-old snapshot.
WINDOW_7D_START, WINDOW_7D_END = timedelta(days=7), timedelta(days=8)

AGE_24H = "24h"
AGE_7D = "7d"


@dataclass(frozen=True)
class DuePost:
    """One snapshot to take: which post, its id on the platform, and which age."""

    post_id: int
    platform: str
    external_id: str
    age: str


def snapshot_age(published_at: datetime, now: datetime) -> str | None:
    """The snapshot a post published at ``published_at`` is due for at ``now``, if any."""
    if now - WINDOW_24H < published_at <= now:
        return AGE_24H
    if now - WINDOW_7D_END < published_at <= now - WINDOW_7D_START:
        return AGE_7D
    return None


def _due(now: datetime) -> ColumnElement[bool]:
    """Published posts inside a snapshot window that lack that window's snapshot."""

    def has_snapshot(age: str) -> ColumnElement[bool]:
        return exists().where(MetricSnapshot.post_id == Post.id, MetricSnapshot.age == age)

    # status = 'published' AND external_id IS NOT NULL AND published_at in a window, as one
    # indexed expression estimated from the published posts alone (app.models.MEASURABLE_AT).
    return or_(
        and_(MEASURABLE_AT > now - WINDOW_24H, MEASURABLE_AT <= now, ~has_snapshot(AGE_24H)),
        and_(MEASURABLE_AT > now - WINDOW_7D_END, MEASURABLE_AT <= now - WINDOW_7D_START,
             ~has_snapshot(AGE_7D)),
    )


def users_with_metrics_due(session: Session, now: datetime) -> list[int]:
    """Ids of the users with at least one snapshot due at ``now``, ascending (one query)."""
    return list(session.scalars(select(Post.user_id).where(_due(now)).distinct().order_by(Post.user_id)))


def collect_metrics_for_user(runtime: Runtime, user_id: int, now: datetime) -> dict[str, Any]:
    """Take every snapshot due at ``now`` for the user's posts; return what happened.

    The counts: ``due`` snapshots, provider ``calls`` made, ``snapshots`` stored (per age in
    ``by_age``), ids the platform did not return (``missing``: deleted posts), platforms
    ``skipped`` (no active account or publisher) and provider ``errors`` per platform. One
    platform failing does not stop the others; an AuthError changes nothing (publishing owns
    re-authorisation) and its posts are simply not measured this run. An account whose stored
    tokens cannot be decrypted is flagged for re-authorisation (the user is told once) and
    skipped: only reconnecting it can help.
    """
    # The scan of due posts reads the replica when one is configured (a post published a
    # moment ago is measured 24 hours later: lag does not matter); tokens come from the
    # primary, where a refresh has just written them.
    with runtime.read_session_factory() as reads:
        due = _due_posts(reads, user_id, now)
    with runtime.session_factory() as session, session.begin():
        platforms = sorted({d.platform for d in due})
        accounts = list(session.scalars(
            select(PlatformAccount).where(PlatformAccount.user_id == user_id,
                                          PlatformAccount.platform.in_(platforms))
        )) if platforms else []
        credentials = {}
        account_status: dict[str, str] = {a.platform: a.status for a in accounts}
        for account in accounts:
            if account.status != AccountStatus.ACTIVE:
                continue
            try:
                credentials[account.platform] = runtime.vault.credentials(account)
            except TokenDecryptionError as exc:
                flag_reauth(session, account.id, user_id, account.platform, str(exc), now)
                account_status[account.platform] = f"{AccountStatus.NEEDS_REAUTH}: {exc}"

    counts: dict[str, Any] = {"due": len(due), "calls": 0, "snapshots": 0,
                              "by_age": {AGE_24H: 0, AGE_7D: 0}, "missing": 0, "skipped": {}, "errors": {}}
    fetched: list[tuple[DuePost, PostMetrics, bool]] = []
    for platform, group in groupby(due, key=lambda d: d.platform):
        posts = list(group)
        creds = credentials.get(platform)
        if creds is None:
            status = account_status.get(platform)
            counts["skipped"][platform] = f"account {status}" if status else "no account connected"
            continue
        try:
            publisher = runtime.providers.publisher(platform)
        except KeyError:
            counts["skipped"][platform] = "no publisher configured"
            continue
        simulated = bool(getattr(publisher, "offline", False))
        for chunk in chunks(posts, POSTS_PER_METRICS_CALL):
            try:
                figures = publisher.fetch_metrics(creds, list(dict.fromkeys(d.external_id for d in chunk)))
            except ProviderError as exc:
                # The rest of this platform's chunks would meet the same refusal; other
                # platforms are unaffected. Nothing is marked, so a re-run within the window retries.
                logger.warning("metrics for user %s on %s failed: %s", user_id, platform, exc)
                counts["errors"][platform] = f"{type(exc).__name__}: {exc}"
                break
            finally:
                counts["calls"] += 1
            for item in chunk:
                metrics = figures.get(item.external_id)
                if metrics is None:
                    counts["missing"] += 1
                else:
                    fetched.append((item, metrics, simulated))

    if fetched:
        with runtime.session_factory() as session, session.begin():
            stored = _store(session, fetched, now)
        for age in stored:
            counts["by_age"][age] += 1
        counts["snapshots"] = len(stored)
    return counts


def _due_posts(session: Session, user_id: int, now: datetime) -> list[DuePost]:
    rows = session.execute(
        select(Post.id, Post.platform, Post.external_id, Post.published_at)
        .where(Post.user_id == user_id, _due(now))
        .order_by(Post.platform, Post.published_at, Post.id)
    ).all()
    due = []
    for post_id, platform, external_id, published_at in rows:
        age = snapshot_age(published_at, now) if published_at is not None else None
        if age is not None and external_id is not None:
            due.append(DuePost(post_id, platform, external_id, age))
    return due


def _store(session: Session, fetched: Sequence[tuple[DuePost, PostMetrics, bool]], now: datetime) -> list[str]:
    """Insert the snapshots not already there and update their posts; return the stored ages."""
    existing = {(post_id, age) for post_id, age in session.execute(
        select(MetricSnapshot.post_id, MetricSnapshot.age)
        .where(MetricSnapshot.post_id.in_([item.post_id for item, _, _ in fetched]))
    )}
    fresh = {(item.post_id, item.age): (item, metrics, simulated) for item, metrics, simulated in fetched
             if (item.post_id, item.age) not in existing}
    if not fresh:
        return []
    rows = [
        {"post_id": item.post_id, "age": item.age, "taken_at": now, "impressions": m.impressions,
         "likes": m.likes, "shares": m.shares, "comments": m.comments,
         "engagement_rate": m.engagement_rate, "simulated": simulated}
        for item, m, simulated in fresh.values()
    ]
    inserted = _insert_new(session, rows)
    updates = [
        {"id": item.post_id, "impressions": m.impressions, "likes": m.likes, "shares": m.shares,
         "comments": m.comments, "metrics_updated_at": now,
         # A platform that reports no impressions gives its posts no rate (not 0 %): see app.report_math.
         "engagement_rate": m.engagement_rate if reports_impressions(item.platform) else None}
        for key, (item, m, _) in fresh.items() if key in inserted
    ]
    if updates:
        session.execute(update(Post), updates)
    return [age for _, age in sorted(inserted)]


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[tuple[int, str]]:
    """Insert snapshot rows, skipping any (post_id, age) a concurrent run stored meanwhile."""
    keys = [MetricSnapshot.post_id, MetricSnapshot.age]
    statement = insert_skipping_conflicts(session, MetricSnapshot, keys=keys)
    returned = session.execute(statement.returning(MetricSnapshot.post_id, MetricSnapshot.age), rows)
    return {(post_id, age) for post_id, age in returned}


def collect_metrics(runtime: Runtime, execution_id: int, message_id: str | None = None) -> WorkflowExecution | None:
    """The per-user step: one user's snapshots for the execution's slot, once."""
    def body(session: Session, execution: WorkflowExecution) -> dict[str, Any]:
        assert execution.user_id is not None
        return collect_metrics_for_user(runtime, execution.user_id, runtime.now())

    return run_execution(runtime.session_factory, execution_id, message_id=message_id, clock=runtime.now,
                         body=body)


METRICS_COLLECTION = PeriodicJob(
    WORKFLOW, "0 2 * * *", Queue.METRICS,
    "Collect engagement for posts published in the last 24 hours and 7 days ago",
    steps=(fan_out_step("One metrics run per user with snapshots due", users_with_metrics_due),
           WARN_EXPIRING_ACCOUNTS),
    catch_up_setting="daily_catch_up_hours",
    per_user=collect_metrics,
)
