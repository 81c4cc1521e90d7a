"""The Operations page's charts as data: hourly (or finer) series over the last 24 h or 7 days.

Each series is a list of ``(bucket start, value)`` with every bucket present (None where there is
nothing to measure, e.g. no post published that hour has no lateness), so a gap in activity shows
as a gap, not as a line drawn across it. One query per chart, bucketed in Python (portable).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Post, PostStatus, QueueSample
from app.ops.stats import ALL_WORK, RunStats, outcomes, percentile, tally
from app.queues import QUEUES

Series = list[tuple[datetime, float | None]]


@dataclass(frozen=True)
class Range:
    """A chart range: how far back, and the bucket widths used for it."""

    name: str
    span: timedelta
    bucket: timedelta
    depth_bucket: timedelta


#: The ranges the page offers.
RANGES = {
    "24h": Range("24h", timedelta(hours=24), timedelta(hours=1), timedelta(minutes=10)),
    "7d": Range("7d", timedelta(days=7), timedelta(hours=1), timedelta(hours=1)),
}


def _floor(instant: datetime, bucket: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((instant.astimezone(UTC) - epoch) // bucket) * bucket


def buckets(now: datetime, span: timedelta, bucket: timedelta) -> list[datetime]:
    """Bucket starts covering (now - span, now], oldest first; the last one holds ``now``."""
    last = _floor(now, bucket)
    count = int(span / bucket)
    return [last - bucket * (count - 1 - i) for i in range(count)]


def charts(session: Session, now: datetime, range_name: str) -> dict[str, Any]:
    """Every chart of the page for one range: published per hour, lateness, success rate, depth."""
    r = RANGES[range_name]
    starts = buckets(now, r.span, r.bucket)
    since = starts[0]
    published: dict[datetime, int] = defaultdict(int)
    late: dict[datetime, list[float]] = defaultdict(list)
    for scheduled, done in session.execute(
            select(Post.scheduled_at, Post.published_at)
            .where(Post.status == PostStatus.PUBLISHED, Post.published_at >= since, Post.published_at <= now)):
        if done is None:  # excluded by the WHERE clause
            continue
        b = _floor(done, r.bucket)
        published[b] += 1
        late[b].append(max(0.0, (done - scheduled).total_seconds() * 1000))

    # The same outcomes as the jobs table and `autopilot check` (app.ops.stats.outcomes), bucketed.
    tallies: dict[datetime, RunStats] = {}
    for outcome in outcomes(session, since, now):
        b = _floor(outcome.at, r.bucket)
        tally(tallies.setdefault(b, RunStats(ALL_WORK, "")), outcome)

    depth_starts = buckets(now, r.span, r.depth_bucket)
    depth: dict[str, dict[datetime, int]] = {q: {} for q in QUEUES}
    for queue, at, waiting, in_flight, delayed in session.execute(
            select(QueueSample.queue, QueueSample.sampled_at, QueueSample.waiting, QueueSample.in_flight,
                   QueueSample.delayed).where(QueueSample.sampled_at >= depth_starts[0])):
        b = _floor(at, r.depth_bucket)
        series = depth.setdefault(queue, {})
        series[b] = max(series.get(b, 0), waiting + in_flight + delayed)  # the bucket's peak

    return {
        "range": r.name,
        "published": {"posts": [(b, float(published.get(b, 0))) for b in starts]},
        "lateness": {
            "p50": [(b, percentile(late[b], 50) if b in late else None) for b in starts],
            "p99": [(b, percentile(late[b], 99) if b in late else None) for b in starts],
        },
        "success_rate": {ALL_WORK: [(b, tallies[b].success_rate if b in tallies else None) for b in starts]},
        "outcomes": tallies,
        "queue_depth": {q: [(b, float(s[b]) if b in s else None) for b in depth_starts]
                        for q, s in depth.items()},
    }
