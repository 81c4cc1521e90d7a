"""Daily generation: research, choose fresh ideas, write one post per slot, schedule it.

The 06:00 UTC job (:data:`DAILY_GENERATION`) fans out one execution per opted-in user; each
user's run (:func:`generate_for_user`) fills the posting slots of the next 24 hours.
Re-running a day creates nothing new: posts are unique per user, platform and slot.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import record
from app.db import insert_skipping_conflicts
from app.jobs.spec import PeriodicJob
from app.media.library import choose_image
from app.models import (
    MediaItem,
    MemoryEntry,
    Post,
    PostStatus,
    ReviewReason,
    User,
    UserSettings,
    WorkflowExecution,
)
from app.notifications import notify
from app.provider_holds import active_hold, as_problem, report_problem
from app.providers.base import ContentBrief, DraftPost, PostSlot, ResearchItem
from app.providers.errors import OperatorProblem
from app.queues import Queue
from app.runtime import Runtime
from app.scheduling import posting_slots
from app.text_limits import limit_error, normalize_newlines
from app.users import opted_in_user_ids
from app.validation import settings_of, validate_settings
from app.workflows.executions import fan_out, fan_out_step, run_execution
from app.workflows.report import latest_insights

WORKFLOW = "daily_generation"
#: Each daily run fills the slots of this window, starting at its own slot (06:00 UTC).
GENERATION_WINDOW = timedelta(hours=24)
#: Research links and post texts used within this many days are not reused.
RECENT_DAYS = 14
#: Recent posts shown to the generator so it does not repeat itself.
RECENT_POSTS_IN_PROMPT = 20


#: Post.topic's column width; a model may well write a longer topic.
MAX_TOPIC_CHARS = 300
#: MemoryEntry.key's column width: longer links are remembered by their hash.
MAX_IDEA_KEY = 300
#: The columns of the posts' unique constraint: one generated post per user, platform and slot.
UNIQUE_SLOT = (Post.user_id, Post.platform, Post.slot_at)


def idea_key(link: str) -> str:
    """How a research link is remembered as used: itself, or its hash when too long to store."""
    if len(link) <= MAX_IDEA_KEY:
        return link
    return "sha256:" + hashlib.sha256(link.encode()).hexdigest()


def fan_out_generation(session: Session, slot: datetime, *, now: datetime) -> list[int]:
    """Pending executions (one per opted-in user) for the daily slot; the caller sends one message each."""
    return fan_out(session, WORKFLOW, slot, opted_in_user_ids(session), now=now)


def generate_for_user(runtime: Runtime, execution_id: int, message_id: str | None = None) -> WorkflowExecution | None:
    """Run one user's daily generation once; a failure is recorded and the user notified."""
    execution = run_execution(runtime.session_factory, execution_id, message_id=message_id, clock=runtime.now,
                              body=lambda session, ex: _generate(runtime, session, ex))
    if execution is not None and execution.error and execution.user_id is not None:
        with runtime.session_factory() as session, session.begin():
            notify(session, execution.user_id, "generation_failed", "Today's posts could not be generated",
                   f"The daily generation for {execution.slot:%Y-%m-%d} failed: {execution.error}",
                   severity="error", dedupe_since=runtime.now() - timedelta(hours=20), now=runtime.now())
    return execution


def _generate(runtime: Runtime, session: Session, execution: WorkflowExecution) -> dict[str, Any]:
    now = runtime.now()
    user = session.get(User, execution.user_id)
    if user is None:
        return {"skipped": "user deleted"}
    settings = user.settings
    if not settings.enable_autonomous_mode:
        return {"skipped": "autonomous mode is off"}
    validate_settings(settings_of(settings))  # settings edited by raw SQL must not slip through

    assert execution.slot is not None
    window_end = execution.slot + GENERATION_WINDOW
    slots = posting_slots(timezone=settings.timezone, platforms=settings.preferred_platforms,
                          posting_times=settings.posting_times, frequency=settings.content_frequency,
                          start=execution.slot, end=window_end)
    existing = {tuple(row) for row in session.execute(
        select(Post.platform, Post.slot_at).where(
            Post.user_id == user.id, Post.slot_at >= execution.slot, Post.slot_at < window_end)
    )}
    # A slot already past its publishing grace (a late catch-up) is not written to be reviewed stale.
    grace = timedelta(minutes=runtime.settings.stale_grace_minutes)
    todo = [s for s in slots if (s.platform, s.at) not in existing and s.at >= now - grace]
    counts: dict[str, Any] = {"slots": len(slots), "already_scheduled": len(existing),
                              "missed": len(slots) - len(existing) - len(todo), "generated": 0}
    if not todo:
        return counts

    research = _research(runtime, session, user.id, settings, now)
    counts["research_items"] = len(research)
    brief = ContentBrief(
        slots=[PostSlot(s.platform, s.at) for s in todo],
        brand_voice=settings.brand_voice, creativity_level=settings.creativity_level,
        topics=list(settings.topics), research=research, language=settings.language,
        recent_posts=_recent_posts(session, user.id, now), insights=_insights(session, user.id),
    )
    drafts = _generate_drafts(runtime, session, brief, now)
    stored = _store_posts(session, user.id, settings.require_approval, drafts, todo_keys={(s.platform, s.at) for s in todo},
                          execution_id=execution.id, now=now)
    counts["generated"] = len(stored)
    counts["empty_slots"] = len(todo) - len(stored)
    _remember(session, user.id, settings.topics, research, stored, now)
    return counts


def _generate_drafts(runtime: Runtime, session: Session, brief: ContentBrief, now: datetime) -> list[DraftPost]:
    """The generator's drafts, unless it is paused for an operator problem.

    The pause is read in the run's own transaction (each statement sees what is committed), so
    checking it costs no second connection. An operator problem (OpenAI quota exhausted)
    pauses the generator for every user and tells the operator once, in its own transaction
    (this run's rolls back); the day's run fails with that reason rather than retrying on a timer.
    """
    generator = runtime.providers.generation
    hold = active_hold(session, generator.name, now)
    if hold is not None:
        raise as_problem(hold)
    try:
        return generator.generate(brief)
    except OperatorProblem as problem:
        with runtime.session_factory() as session, session.begin():
            report_problem(session, problem, runtime.now())
        raise


def _research(runtime: Runtime, session: Session, user_id: int, settings: UserSettings, now: datetime) -> list[ResearchItem]:
    """Research every topic, then drop links this user already wrote about recently."""
    items: list[ResearchItem] = []
    for topic in settings.topics:
        items.extend(runtime.providers.research.search(topic, language=settings.language,
                                                       country=settings.country, now=now))
    used = set(session.scalars(
        select(MemoryEntry.key).where(MemoryEntry.user_id == user_id, MemoryEntry.kind == "idea",
                                      MemoryEntry.created_at >= now - timedelta(days=RECENT_DAYS))
    ))
    fresh = [item for item in items if idea_key(item.link) not in used]
    # Nothing new today: better an old idea from a new angle than no post.
    return fresh or items


def _recent_posts(session: Session, user_id: int, now: datetime) -> list[str]:
    return list(session.scalars(
        select(Post.text).where(Post.user_id == user_id, Post.created_at >= now - timedelta(days=RECENT_DAYS))
        .order_by(Post.created_at.desc()).limit(RECENT_POSTS_IN_PROMPT)
    ))


def _insights(session: Session, user_id: int) -> list[str]:
    """Recommendations of the latest weekly reports: what worked is worth doing again."""
    return latest_insights(session, user_id)


def _store_posts(session: Session, user_id: int, require_approval: bool, drafts: list[DraftPost], *,
                 todo_keys: set[tuple[str, datetime]], execution_id: int, now: datetime) -> list[int]:
    """Insert the usable drafts in one statement and audit each; returns the new posts' ids.

    A slot a racing run filled since ``todo_keys`` was read is skipped (``ON CONFLICT DO
    NOTHING`` on the unique user, platform and slot), as is a blank, over-long or unasked-for
    draft. Ids and audit rows follow the drafts' order.
    """
    rows: list[dict[str, Any]] = []
    # The user's images with tags, read once: a post gets the one its topic matches best (the
    # tags and alt texts decide, never the pixels). No match: the post stays text only.
    library = [(row.id, list(row.tags or [])) for row in session.execute(
        select(MediaItem.id, MediaItem.tags).where(MediaItem.user_id == user_id)
        .order_by(MediaItem.created_at.desc(), MediaItem.id.desc()))]
    used: dict[int, int] = {}
    for draft in drafts:
        key = (draft.platform, draft.slot_at)
        text = normalize_newlines(draft.text).strip()
        if key not in todo_keys or not text or limit_error(draft.platform, text):
            continue  # never a blank, broken or off-schedule post
        todo_keys.discard(key)
        media_id = choose_image(library, f"{draft.topic or ''} {text}", used) if library else None
        if media_id is not None:
            used[media_id] = used.get(media_id, 0) + 1
        rows.append({"user_id": user_id, "platform": draft.platform, "text": text, "media_id": media_id,
                     "topic": (draft.topic or "").strip()[:MAX_TOPIC_CHARS] or None, "created_at": now,
                     "scheduled_at": draft.slot_at, "slot_at": draft.slot_at, "execution_id": execution_id,
                     "status": PostStatus.NEEDS_REVIEW if require_approval else PostStatus.SCHEDULED,
                     "review_reason": ReviewReason.APPROVAL if require_approval else None})
    if not rows:
        return []
    statement = insert_skipping_conflicts(session, Post, keys=UNIQUE_SLOT)
    inserted = {(platform, slot_at): post_id for post_id, platform, slot_at
                in session.execute(statement.returning(Post.id, Post.platform, Post.slot_at), rows)}
    stored: list[int] = []
    for row in rows:
        post_id = inserted.get((row["platform"], row["slot_at"]))
        if post_id is None:
            continue  # the slot was filled meanwhile: unique per user, platform and slot
        stored.append(post_id)
        details = {"platform": row["platform"], "at": row["scheduled_at"].isoformat(), "topic": row["topic"]}
        if row["media_id"] is not None:
            details["media_id"] = row["media_id"]
        record(session, "post.generated", user_id=user_id, post_id=post_id, details=details)
        record(session, "post.reviewed" if require_approval else "post.scheduled", user_id=user_id,
               post_id=post_id, details={**details, "reason": row["review_reason"]} if require_approval else details)
    return stored


def _remember(session: Session, user_id: int, topics: list[str], research: list[ResearchItem],
              stored: list[int], now: datetime) -> None:
    session.add(MemoryEntry(user_id=user_id, kind="research", key=f"research:{now:%Y-%m-%d}", created_at=now,
                            content={"topics": topics, "items": [
                                {"title": r.title, "link": r.link, "snippet": r.snippet, "source": r.source,
                                 "published_at": r.published_at.isoformat() if r.published_at else None}
                                for r in research[:30]]}))
    # Every item shown to the generator counts as covered: tomorrow's brief brings new material.
    for key in sorted({idea_key(r.link) for r in research if r.link}):
        session.add(MemoryEntry(user_id=user_id, kind="idea", key=key, created_at=now,
                                content={"posts": stored}))


DAILY_GENERATION = PeriodicJob(
    WORKFLOW, "0 6 * * *", Queue.AUTONOMOUS,
    "Research, write and schedule the next 24 hours of posts for every opted-in user",
    steps=(fan_out_step("One generation run per opted-in user",
                        lambda session, now: opted_in_user_ids(session)),),
    catch_up_setting="daily_catch_up_hours",
    per_user=generate_for_user,
)
