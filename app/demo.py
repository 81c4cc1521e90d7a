"""``autopilot demo``: one simulated week through the real actors, on embedded defaults.

A fresh SQLite file, a few users in different time zones (one posting at 02:30 local on the
US spring-forward day, a time that does not exist), the in-process broker and the offline
providers. The clock is fast-forwarded from event to event: each cron tick, and each post's
due second, is sent through the same actors a production worker runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
from sqlalchemy import select

import actors
from actors.messages import send
from app import migrate, users
from app.broker import drain
from app.clock import SettableClock
from app.config import Settings
from app.crypto import TokenVault
from app.intents import RunSlot
from app.media.library import add_image
from app.media.samples import sample_images
from app.models import MemoryEntry, MetricSnapshot, Post, PostStatus, User
from app.platforms import KNOWN_PLATFORMS, reports_impressions
from app.providers.base import TokenSet
from app.report_math import engagement_rate, published_on_time
from app.runtime import Runtime, set_runtime
from app.workflows.jobs import JOBS

#: The simulated week: Monday 8 March 2027 00:00 UTC to the next Monday (US clocks spring
#: forward on Sunday 14 March; the weekly report runs that Sunday at 08:00 UTC).
DEMO_START = datetime(2027, 3, 8, tzinfo=UTC)
DEMO_DAYS = 7

#: The demo's people. Each list of ``times`` is one platform's posting times; persona ``k``'s
#: ``j``-th list goes to the registry's platform ``(k + j) % n`` (:func:`demo_users`), so
#: every platform of the registry has a user, whatever it holds.
DEMO_PERSONAS: list[dict[str, Any]] = [
    {"email": "ana@demo.example", "timezone": "America/New_York", "topics": ["python", "open source"],
     "times": [["09:00"], ["10:00", "17:00"]], "content_frequency": 7, "brand_voice": "professional"},
    {"email": "kenji@demo.example", "timezone": "Asia/Tokyo", "topics": ["machine learning"],
     "times": [["08:30"]], "content_frequency": 10, "brand_voice": "playful"},
    {"email": "lea@demo.example", "timezone": "Europe/London", "topics": ["remote work"],
     "times": [["12:00"]], "content_frequency": 3, "brand_voice": "casual"},
    {"email": "sam@demo.example", "timezone": "America/Los_Angeles", "topics": ["startups"],
     "times": [["02:30"]], "content_frequency": 7, "brand_voice": "bold", "require_approval": False},
    {"email": "noa@demo.example", "timezone": "Europe/Berlin", "topics": ["open data"],
     "times": [["11:15"]], "content_frequency": 5, "brand_voice": "curious"},
]


def demo_users() -> list[dict[str, Any]]:
    """The personas with their platforms' posting times (see :data:`DEMO_PERSONAS`)."""
    keys = list(KNOWN_PLATFORMS)
    users = []
    for k, persona in enumerate(DEMO_PERSONAS):
        spec = {name: value for name, value in persona.items() if name != "times"}
        spec["posting_times"] = {keys[(k + j) % len(keys)]: times for j, times in enumerate(persona["times"])}
        users.append(spec)
    return users


@dataclass
class DemoResult:
    rows: list[dict[str, Any]]
    highlights: dict[str, list[str]]
    providers: dict[str, str]
    database: str


def prepare_database(path: Path) -> str:
    if path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    return url


def create_demo_users(runtime: Runtime) -> None:
    with runtime.session_factory() as session, session.begin():
        for spec in demo_users():
            raw = {k: v for k, v in spec.items() if k != "email"}
            raw.update(preferred_platforms=list(spec["posting_times"]), enable_autonomous_mode=True)
            users.create_user(session, spec["email"], raw, actor="demo")
            for platform in spec["posting_times"]:
                users.connect_account(session, runtime.vault, spec["email"], platform,
                                      TokenSet("sandbox-token", "sandbox-refresh",
                                               DEMO_START + timedelta(days=60)),
                                      handle=f"@{spec['email'].split('@')[0]}", external_id="1", actor="demo")
    # A small library per user, tagged with their topics: generation attaches the matching one.
    with runtime.session_factory() as session, session.begin():
        for spec in DEMO_PERSONAS:
            user = session.scalar(select(User).where(User.email == spec["email"]))
            assert user is not None
            for topic in spec["topics"]:
                for data, alt, tags in sample_images(topic):
                    add_image(session, runtime.media_storage, user.id, data, alt_text=alt, tags=tags)


def timeline(start: datetime, days: int) -> list[tuple[datetime, str]]:
    """The cron events of the simulated period, in order (posts are added as they appear)."""
    end = start + timedelta(days=days)
    events = [(t, job) for job in ("metrics_collection", "daily_generation", "weekly_report")
              for t in JOBS[job].fire_times(start, end)]
    return sorted(events)


def run_demo(database: Path, *, on_progress: Callable[[int, int, str], None] | None = None) -> DemoResult:
    """Run the simulated week; ``on_progress(done, total, label)`` drives a progress bar."""
    url = prepare_database(database)
    clock = SettableClock(DEMO_START)
    # The demo's world begins on Monday: last Sunday's report is not a missed slot to catch up.
    # No REDIS_URL: the demo is embedded, an in-process broker whatever the shell says.
    settings = Settings(database_url=url, weekly_catch_up_hours=6,
                        media_dir=str(database.with_name(f"{database.stem}-media")))
    runtime = Runtime.from_settings(settings, clock=clock)
    set_runtime(runtime)
    create_demo_users(runtime)

    broker = actors.setup(settings)
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        _simulate(runtime, clock, broker, on_progress)
    finally:
        worker.stop()
        set_runtime(None)
    return _summarise(runtime, url)


def _simulate(runtime: Runtime, clock: SettableClock, broker: Any,
              on_progress: Callable[[int, int, str], None] | None) -> None:
    end = DEMO_START + timedelta(days=DEMO_DAYS)
    cron_events = timeline(DEMO_START, DEMO_DAYS)
    done = 0
    while True:
        next_cron = cron_events[0] if cron_events else None
        next_post = _next_due_post(runtime, clock.now)
        if next_cron is None and (next_post is None or next_post >= end):
            break
        if next_post is not None and (next_cron is None or next_post < next_cron[0]) and next_post < end:
            clock.now = next_post
            label = f"{next_post:%a %H:%M} publish"
            _tick(broker, "dispatch_due_posts", next_post)
        else:
            assert next_cron is not None
            cron_events.pop(0)
            clock.now = next_cron[0]
            label = f"{next_cron[0]:%a %H:%M} {next_cron[1]}"
            _tick(broker, next_cron[1], next_cron[0])
        done += 1
        if on_progress:
            on_progress(done, done + len(cron_events), label)


def _tick(broker: Any, job: str, at: datetime) -> None:
    send([RunSlot(job, at.replace(second=0, microsecond=0), trigger="periodic")], at)
    drain(broker)


def _next_due_post(runtime: Runtime, after: datetime) -> datetime | None:
    with runtime.session_factory() as session:
        return session.scalar(
            select(Post.scheduled_at).where(Post.status == PostStatus.SCHEDULED, Post.scheduled_at >= after)
            .order_by(Post.scheduled_at).limit(1))


def _summarise(runtime: Runtime, url: str) -> DemoResult:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    with runtime.session_factory() as session:
        found = session.execute(select(User.email, Post).join(Post, Post.user_id == User.id)).all()
        for email, post in found:
            row = rows.setdefault((email, post.platform), {
                "user": email, "platform": post.platform, "posts": 0, "published": 0, "on_time": 0,
                "review": 0, "impressions": 0, "interactions": 0, "with_image": 0})
            row["posts"] += 1
            row["with_image"] += post.media_id is not None and post.status == PostStatus.PUBLISHED
            if post.status == PostStatus.PUBLISHED and post.published_at is not None:
                row["published"] += 1
                row["on_time"] += published_on_time(post.scheduled_at, post.published_at)
            row["review"] += post.status == PostStatus.NEEDS_REVIEW
        snapshots = session.execute(select(Post.user_id, Post.platform, User.email, MetricSnapshot)
                                    .join(MetricSnapshot, MetricSnapshot.post_id == Post.id)
                                    .join(User, User.id == Post.user_id)
                                    .where(MetricSnapshot.age == "24h")).all()
        for _uid, platform, email, snap in snapshots:
            row = rows[(email, platform)]
            row["impressions"] += snap.impressions
            row["interactions"] += snap.likes + snap.shares + snap.comments
        highlights: dict[str, list[str]] = {}
        for email, entry in session.execute(select(User.email, MemoryEntry).join(MemoryEntry, MemoryEntry.user_id == User.id)
                                            .where(MemoryEntry.kind == "insight")).all():
            highlights[email] = list(entry.content.get("recommendations", []))[:2]
    for row in rows.values():
        # None where the platform reports no impressions: its posts have interactions, no rate.
        row["engagement"] = (engagement_rate(row["interactions"], row["impressions"])
                             if reports_impressions(row["platform"]) else None)
    return DemoResult(rows=sorted(rows.values(), key=lambda r: (r["user"], r["platform"])),
                      highlights=dict(sorted(highlights.items())), providers=runtime.providers.describe(), database=url)


__all__ = ["DemoResult", "TokenVault", "run_demo"]
