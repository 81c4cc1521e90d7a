"""A user's posting history for the dashboard's tests and browser tests: daily posts on two (or
more) platforms, in a time zone with DST, engagement varying by local hour. Posts on a platform
that reports no impressions (Bluesky, Mastodon) store 0 impressions with their likes, reposts
and replies, as their providers do."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from app.models import Post
from app.platforms import reports_impressions
from app.statuses import PostStatus, ReviewReason

ZONE = "America/New_York"
HISTORY_DAYS = 730
LOCAL_HOURS = (8, 9, 12, 17, 20)
#: The platforms a history posts to unless told otherwise.
DEFAULT_PLATFORMS = ("twitter", "linkedin")


def seed_history(sessions: sessionmaker[Session], user_id: int, now: datetime, seed: int, *, zone: str = ZONE,
                 days: int = HISTORY_DAYS, platforms: tuple[str, ...] = DEFAULT_PLATFORMS) -> int:
    """``days`` (two years) of daily posts on ``platforms`` (X and LinkedIn) ending at ``now``
    (plus a week ahead), bulk inserted.

    Mostly published (a few late, a few never measured, a few measured but never seen), some
    sent to review, failed or cancelled; engagement varies by hour so the heatmap has a shape.
    Returns the rows inserted.
    """
    rng = random.Random(seed)
    tz = ZoneInfo(zone)
    rows = []
    first = (now - timedelta(days=days)).astimezone(tz).date()
    for offset in range(days + 7):
        day = first + timedelta(days=offset)
        for platform in platforms:
            hour = rng.choice(LOCAL_HOURS)
            at = datetime.combine(day, time(hour, rng.choice((0, 30))), tz).astimezone(UTC)
            row = {"user_id": user_id, "platform": platform, "text": f"{platform} post of {day}",
                   "topic": rng.choice(("python", "postgres", "ops")), "scheduled_at": at, "slot_at": at,
                   "status": PostStatus.SCHEDULED, "published_at": None, "external_id": None,
                   "impressions": None, "likes": None, "shares": None, "comments": None,
                   "review_reason": None, "metrics_updated_at": None}
            if at < now:
                roll = rng.random()
                if roll < 0.06:
                    row.update(status=PostStatus.NEEDS_REVIEW, review_reason=ReviewReason.OUTCOME_UNKNOWN)
                elif roll < 0.09:
                    row.update(status=PostStatus.FAILED)
                elif roll < 0.11:
                    row.update(status=PostStatus.CANCELLED)
                else:
                    delay = timedelta(seconds=rng.choice((2, 5, 30, 60, 61, 300)))
                    row.update(status=PostStatus.PUBLISHED, published_at=at + delay,
                               external_id=(f"at://did:plc:u{user_id}/app.bsky.feed.post/{offset}"
                                            if platform == "bluesky" else f"{user_id}-{platform}-{offset}"))
                    seen = rng.random()
                    if seen < 0.03:  # published, its figures not fetched yet
                        rows.append(row)
                        continue
                    impressions = 0 if seen < 0.06 else rng.randint(100, 5000)
                    rate = (0.01 + 0.004 * LOCAL_HOURS.index(hour)) * rng.uniform(0.5, 1.5)
                    # Where no impressions are reported, the interactions of a post seen ~2,000 times.
                    interactions = round((impressions if reports_impressions(platform) else 2000) * rate)
                    if not reports_impressions(platform):
                        impressions = 0
                    likes = interactions // 2
                    row.update(impressions=impressions, likes=likes, shares=(interactions - likes) // 2,
                               comments=interactions - likes - (interactions - likes) // 2,
                               metrics_updated_at=min(at + timedelta(hours=6), now))
            rows.append(row)
    with sessions.begin() as session:
        session.execute(insert(Post), rows)
    return len(rows)


