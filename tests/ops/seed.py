"""Known rows for the Operations page and /metrics: posts, job runs and depth samples, relative to now."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask

from admin.ext import EXTENSION_KEY
from app.models import JobRun, Post, PostStatus, QueueSample, User


def seed(app: Flask, now: datetime) -> None:
    """A user, posts in several states (two published late by 0.2 s and 3 s), runs and samples."""
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        user = User(email="m@example.com")
        session.add(user)
        session.flush()
        for i, (status, late) in enumerate([(PostStatus.PUBLISHED, 0.2), (PostStatus.PUBLISHED, 3.0),
                                            (PostStatus.SCHEDULED, None), (PostStatus.NEEDS_REVIEW, None)]):
            at = now - timedelta(hours=2, minutes=i)
            session.add(Post(user_id=user.id, platform="twitter", text=f"p{i}", status=status,
                             scheduled_at=at if late is not None else now + timedelta(hours=1),
                             publish_started_at=at if late is not None else None,
                             published_at=at + timedelta(seconds=late) if late is not None else None))
        session.add(JobRun(job="dispatch_due_posts", slot=now.replace(second=0, microsecond=0),
                           claimed_at=now - timedelta(seconds=5), finished_at=now - timedelta(seconds=4),
                           status="succeeded"))
        session.add(JobRun(job="daily_generation", slot=now.replace(minute=0, second=0, microsecond=0)
                           - timedelta(hours=3), claimed_at=now - timedelta(hours=3), status="failed",
                           finished_at=now - timedelta(hours=3), error="boom"))
        for minutes in range(1, 30):
            session.add(QueueSample(queue="posting", sampled_at=(now - timedelta(minutes=minutes)).replace(
                second=0, microsecond=0), waiting=minutes % 7, in_flight=0, delayed=2, dead=0, workers=1))


def seed_history(app: Flask, now: datetime) -> dict[str, int]:
    """A week of activity for the charts: posts published every 3 hours with varying lateness,
    a dispatch run every 20 minutes of the last day (one in ten failed), depth every 5 minutes.

    Returns how many of each it wrote in the last 24 hours.
    """
    counts = {"published_24h": 0, "runs_24h": 0, "samples_24h": 0}
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        user = User(email="history@example.com")
        session.add(user)
        session.flush()
        for i in range(1, 7 * 8):
            at = (now - timedelta(hours=3 * i)).replace(second=0, microsecond=0)
            late = timedelta(milliseconds=5 + (i * 37) % 240)
            session.add(Post(user_id=user.id, platform="twitter" if i % 2 else "linkedin", text=f"h{i}",
                             status=PostStatus.PUBLISHED, scheduled_at=at, publish_started_at=at,
                             published_at=at + late))
            counts["published_24h"] += now - (at + late) <= timedelta(hours=24)
        for i in range(1, 72):
            at = now - timedelta(minutes=20 * i)
            session.add(JobRun(job="sweep_stuck_posts", slot=at.replace(second=0, microsecond=0),
                               claimed_at=at, finished_at=at + timedelta(seconds=1),
                               status="failed" if i % 10 == 0 else "succeeded"))
            counts["runs_24h"] += 1
        for i in range(1, 24 * 12):
            at = (now - timedelta(minutes=5 * i)).replace(second=0, microsecond=0)
            for queue, depth in (("posting", 3 + (i % 12)), ("autonomous", (i // 24) % 5)):
                session.add(QueueSample(queue=queue, sampled_at=at, waiting=depth, in_flight=0, delayed=1,
                                        dead=0, workers=1))
            counts["samples_24h"] += 1
    return counts
