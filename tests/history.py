"""A user's posting history for the dashboard's tests and browser tests: daily posts on two
platforms, in a time zone with DST, engagement varying by local hour."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from app.models import Post
from app.statuses import PostStatus, ReviewReason

ZONE = "America/New_York"
HISTORY_DAYS = 730
LOCAL_HOURS = (8, 9, 12, 17, 20)


def seed_history(sessions: sessionmaker[Session], user_id: int, now: datetime, seed: int, *, zone: str = ZONE,
                 days: int = HISTORY_DAYS) -> int:
    """``days`` (two years) of daily posts on X and LinkedIn ending at ``now`` (plus a week ahead), bulk inserted.

    Mostly published (a few late, a few never seen), some sent to review, failed or cancelled;
    engagement varies by hour so the heatmap has a shape. Returns the rows inserted.
    """
    rng = random.Random(seed)
    tz = ZoneInfo(zone)
    rows = []
    first = (now - timedelta(days=days)).astimezone(tz).date()
    for offset in range(days + 7):
        day = first + timedelta(days=offset)
        for platform in ("twitter", "linkedin"):
            hour = rng.choice(LOCAL_HOURS)
            at = datetime.combine(day, time(hour, rng.choice((0, 30))), tz).astimezone(UTC)
            row = {"user_id": user_id, "platform": platform, "text": f"{platform} post of {day}",
                   "topic": rng.choice(("python", "postgres", "ops")), "scheduled_at": at, "slot_at": at,
                   "status": PostStatus.SCHEDULED, "published_at": None, "external_id": None,
                   "impressions": None, "likes": None, "shares": None, "comments": None,
                   "review_reason": None}
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
                    impressions = 0 if rng.random() < 0.05 else rng.randint(100, 5000)
                    rate = (0.01 + 0.004 * LOCAL_HOURS.index(hour)) * rng.uniform(0.5, 1.5)
                    interactions = round(impressions * rate)
                    likes = interactions // 2
                    row.update(status=PostStatus.PUBLISHED, published_at=at + delay,
                               external_id=f"{user_id}-{platform}-{offset}", impressions=impressions,
                               likes=likes, shares=(interactions - likes) // 2,
                               comments=interactions - likes - (interactions - likes) // 2)
            rows.append(row)
    with sessions.begin() as session:
        session.execute(insert(Post), rows)
    return len(rows)


