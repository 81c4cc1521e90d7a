"""Daily generation: research, choose fresh ideas, write one post per slot, schedule it.

The 06:00 UTC job (:data:`DAILY_GENERATION`) fans out one execution per opted-in user; each
user's run (:func:`generate_for_user`) fills the posting slots of the next 24 hours.
Re-running a day creates nothing new: posts are unique per user, platform and slot.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import record
from app.db import insert_skipping_conflicts
from app.errors import ValidationError
from app.jobs.spec import PeriodicJob
from app.media.images import MediaError
from app.media.library import add_image, choose_image, normalise_tags
from app.models import (
    MediaItem,
    MemoryEntry,
    Post,
    PostStatus,
    ReviewReason,
    User,
    WorkflowExecution,
)
from app.notifications import notify
from app.provider_holds import active_hold, as_problem, report_problem
from app.providers.base import ContentBrief, DraftPost, ImageCandidate, PostSlot, ResearchItem
from app.providers.errors import OperatorProblem, ProviderError
from app.providers.openai_prompt import MAX_IMAGE_CANDIDATES
from app.queues import Queue
from app.runtime import Runtime
from app.scheduling import posting_slots
from app.text_limits import limit_error, normalize_newlines
from app.users import opted_in_user_ids
from app.validation import settings_of, validate_settings
from app.workflows.executions import Phases, fan_out, fan_out_step, run_execution_in_phases
from app.workflows.report import latest_insights

logger = logging.getLogger(__name__)

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
#: Seconds one run may spend asking the image model in all: image calls are slow (tens of
#: seconds each) and a day of many slots must not outlast the message's time limit (Dramatiq's
#: default, 10 minutes). Posts past the budget stay text only, with that reason.
IMAGE_BUDGET_SECONDS = 240.0
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
    """Run one user's daily generation once; a failure is recorded and the user notified.

    The run reads what it needs in one short transaction, calls research, the language model
    and the image model with no transaction open (a provider call may take minutes; it must
    not hold a pooled connection or row locks meanwhile), then stores the posts, their audit
    rows and the day's memory in the short transaction that marks the execution succeeded.
    """
    phases = Phases(prepare=lambda session, ex: _prepare(runtime, session, ex),
                    work=lambda plan: _work(runtime, plan),
                    record=lambda session, ex, done: _record(session, ex, done))
    execution = run_execution_in_phases(runtime.session_factory, execution_id, message_id=message_id,
                                        clock=runtime.now, phases=phases)
    if execution is not None and execution.error and execution.user_id is not None:
        with runtime.session_factory() as session, session.begin():
            notify(session, execution.user_id, "generation_failed", "Today's posts could not be generated",
                   f"The daily generation for {execution.slot:%Y-%m-%d} failed: {execution.error}",
                   severity="error", dedupe_since=runtime.now() - timedelta(hours=20), now=runtime.now())
    return execution


@dataclass(frozen=True)
class _Plan:
    """What a run read in its first transaction, as plain values: the providers' input."""

    user_id: int
    now: datetime
    todo: list[PostSlot]
    counts: dict[str, Any]
    topics: list[str]
    language: str
    country: str
    brand_voice: str
    creativity_level: float
    require_approval: bool
    #: Research links (as :func:`idea_key`) this user wrote about within :data:`RECENT_DAYS`.
    used_ideas: frozenset[str]
    library: list[_LibraryImage]
    recent_posts: list[str]
    insights: list[str]
    #: The generator's pause in force, as the problem the run fails with (after research, as before).
    paused: OperatorProblem | None


@dataclass(frozen=True)
class _Done:
    """What the providers produced, to be stored in the run's last transaction."""

    plan: _Plan
    research: list[ResearchItem]
    drafts: list[DraftPost]
    images: dict[tuple[str, datetime], _PostImage]


def _prepare(runtime: Runtime, session: Session, execution: WorkflowExecution) -> _Plan | dict[str, Any]:
    """Phase one (short transaction): the user's settings, free slots, library, recent posts,
    insights and the generator's pause; or the run's counts when there is nothing to write."""
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
    used_ideas = frozenset(key for key in session.scalars(
        select(MemoryEntry.key).where(MemoryEntry.user_id == user.id, MemoryEntry.kind == "idea",
                                      MemoryEntry.created_at >= now - timedelta(days=RECENT_DAYS))
    ) if key is not None)
    library = _library(session, user.id)
    recent_posts = _recent_posts(session, user.id, now)
    insights = _insights(session, user.id)
    hold = active_hold(session, runtime.providers.generation.name, now)
    return _Plan(
        user_id=user.id, now=now, todo=[PostSlot(s.platform, s.at) for s in todo], counts=counts,
        topics=list(settings.topics), language=settings.language, country=settings.country,
        brand_voice=settings.brand_voice, creativity_level=settings.creativity_level,
        require_approval=settings.require_approval, used_ideas=used_ideas, library=library,
        recent_posts=recent_posts, insights=insights, paused=as_problem(hold) if hold is not None else None)


def _work(runtime: Runtime, plan: _Plan | dict[str, Any]) -> _Done | dict[str, Any]:
    """Phase two (no transaction open): research, drafts, images; each write a provider step
    needs (the research cache, a generated image, an operator problem) has its own short one."""
    if not isinstance(plan, _Plan):
        return plan
    research = _research(runtime, plan)
    candidates = _candidates(plan.library, plan.topics)
    brief = ContentBrief(
        slots=plan.todo, brand_voice=plan.brand_voice, creativity_level=plan.creativity_level,
        topics=plan.topics, research=research, language=plan.language,
        recent_posts=plan.recent_posts, insights=plan.insights,
        images=candidates, describe_images=runtime.providers.images is not None,
    )
    drafts = _generate_drafts(runtime, plan, brief)
    images = _images_for(runtime, plan.user_id, drafts, plan.library, candidates)
    return _Done(plan, research, drafts, images)


def _record(session: Session, execution: WorkflowExecution, done: _Done | dict[str, Any]) -> dict[str, Any]:
    """Phase three (the short transaction that finishes the execution): posts, audit, memory."""
    if not isinstance(done, _Done):
        return done
    plan = done.plan
    counts = dict(plan.counts, research_items=len(done.research))
    stored = _store_posts(session, plan.user_id, plan.require_approval, done.drafts,
                          todo_keys={(s.platform, s.slot_at) for s in plan.todo},
                          execution_id=execution.id, now=plan.now, images=done.images)
    counts["generated"] = len(stored)
    created = [i for i in done.images.values() if i.generated]
    if created:
        counts["images_generated"] = len(created)
    failed = [i.error for i in done.images.values() if i.error]
    if failed:
        counts["image_failures"] = failed
    counts["empty_slots"] = len(plan.todo) - len(stored)
    _remember(session, plan.user_id, plan.topics, done.research, stored, plan.now)
    return counts


def _generate_drafts(runtime: Runtime, plan: _Plan, brief: ContentBrief) -> list[DraftPost]:
    """The generator's drafts, unless it is paused for an operator problem.

    The pause was read in the run's first transaction. An operator problem (OpenAI quota
    exhausted) pauses the generator for every user and tells the operator once, in its own
    short transaction; the day's run fails with that reason rather than retrying on a timer.
    """
    if plan.paused is not None:
        raise plan.paused
    try:
        return runtime.providers.generation.generate(brief)
    except OperatorProblem as problem:
        with runtime.session_factory() as session, session.begin():
            report_problem(session, problem, runtime.now())
        raise


def _research(runtime: Runtime, plan: _Plan) -> list[ResearchItem]:
    """Research every topic, then drop links this user already wrote about recently."""
    items: list[ResearchItem] = []
    for topic in plan.topics:
        items.extend(runtime.providers.research.search(topic, language=plan.language,
                                                       country=plan.country, now=plan.now))
    fresh = [item for item in items if idea_key(item.link) not in plan.used_ideas]
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


@dataclass(frozen=True)
class _LibraryImage:
    media_id: int
    tags: list[str]
    alt_text: str


@dataclass(frozen=True)
class _PostImage:
    """The image a draft gets: a library image's id, one generated for it, or none and why."""

    media_id: int | None
    generated: bool = False
    error: str | None = None


def _library(session: Session, user_id: int) -> list[_LibraryImage]:
    """The user's images (id, tags, alt text; never the pixels), newest first, read once a run."""
    return [_LibraryImage(row.id, list(row.tags or []), row.alt_text) for row in session.execute(
        select(MediaItem.id, MediaItem.tags, MediaItem.alt_text).where(MediaItem.user_id == user_id)
        .order_by(MediaItem.created_at.desc(), MediaItem.id.desc()))]


def _candidates(library: list[_LibraryImage], topics: list[str]) -> list[ImageCandidate]:
    """The images whose tags match the user's topics, most matching first: what the model may
    name (by id and alt text)."""
    words = set(normalise_tags(" ".join(topics)))
    scored = [(len(words & set(image.tags)), position, image) for position, image in enumerate(library)]
    return [ImageCandidate(image.media_id, image.alt_text)
            for score, _, image in sorted(scored, key=lambda t: (-t[0], t[1])) if score > 0][:MAX_IMAGE_CANDIDATES]


def _images_for(runtime: Runtime, user_id: int, drafts: list[DraftPost],
                library: list[_LibraryImage], candidates: list[ImageCandidate]) -> dict[tuple[str, datetime], _PostImage]:
    """Each draft's image, by (platform, slot).

    * The generator named an image (``image_chosen``): it is attached only if it is one of the
      ``candidates`` offered to it, which are this user's. An id not offered (another user's, a
      deleted one, an invented one) is ignored and the tag match below decides instead, as if
      the model had not answered; a null answer means no library image.
    * Otherwise (the offline templates never name one) the library image sharing most tags with
      the post's topic and text, the least used today on ties.
    * A post left without a library image when the library had no candidate for the topics is
      illustrated by the image model if one is configured (``OPENAI_IMAGE_MODEL``): stored in
      the library as generated, with the generator's description as alt text. Any failure of
      that (the call, a refusal, bytes the library refuses, storage) keeps the post without
      an image; the reason is logged and recorded in the run's result and the post's audit.
      The image calls of a run share :data:`IMAGE_BUDGET_SECONDS`; past it, posts stay text only.
    """
    offered = {c.media_id for c in candidates}
    pairs = [(image.media_id, image.tags) for image in library]
    deadline = time.monotonic() + IMAGE_BUDGET_SECONDS
    used: dict[int, int] = {}
    chosen: dict[tuple[str, datetime], _PostImage] = {}
    for draft in drafts:
        key = (draft.platform, draft.slot_at)
        if key in chosen or not draft.text.strip():
            continue
        media_id: int | None = None
        if draft.image_chosen and draft.media_id in offered:
            media_id = draft.media_id
        elif draft.image_chosen and draft.media_id is None:
            media_id = None
        elif pairs:
            if draft.image_chosen:
                logger.info("generation named image %s, which was not offered; using the tag match", draft.media_id)
            media_id = choose_image(pairs, f"{draft.topic or ''} {draft.text}", used)
        if media_id is not None:
            used[media_id] = used.get(media_id, 0) + 1
            chosen[key] = _PostImage(media_id)
        elif runtime.providers.images is not None and not candidates:
            if time.monotonic() >= deadline:
                reason = (f"the image for {draft.platform} at {draft.slot_at:%Y-%m-%d %H:%M} was not generated: "
                          f"this run's {IMAGE_BUDGET_SECONDS:.0f} s for images were spent")
                logger.warning("user %s: %s", user_id, reason)
                chosen[key] = _PostImage(None, error=reason)
            else:
                chosen[key] = _generated_image(runtime, user_id, draft)
    return chosen


def _generated_image(runtime: Runtime, user_id: int, draft: DraftPost) -> _PostImage:
    """Ask the image model for an illustration and keep it in the library; never raises for a
    failed image (the post matters more than its picture).

    The image is called with no transaction open and stored in its own short one (a refused
    image stores nothing: neither row nor files). Once stored it stays in the user's library,
    marked generated, even if its post is not: a racing run filled the slot, the draft was
    unusable, or the run failed later. Such an image is an ordinary library image nobody
    points at (untagged, so never offered to the model by topic), which the user may use or
    delete like any other.
    """
    images = runtime.providers.images
    assert images is not None
    alt_text = draft.image_description or f"An illustration for a post about {draft.topic or 'this subject'}"
    prompt = f"{alt_text} Illustration for a social media post; no words or letters in the picture."
    try:
        data = images.generate(prompt)
        with runtime.session_factory() as session, session.begin():
            media_id = add_image(session, runtime.media_storage, user_id, data, alt_text=alt_text,
                                 tags=(), generated=True,
                                 max_bytes=runtime.settings.media_max_upload_bytes,
                                 max_pixels=runtime.settings.media_max_upload_pixels).id
    except (ProviderError, ValidationError, MediaError) as exc:
        reason = f"the image for {draft.platform} at {draft.slot_at:%Y-%m-%d %H:%M} could not be generated: {exc}"
        logger.warning("user %s: %s; the post is kept without an image", user_id, reason)
        return _PostImage(None, error=reason)
    return _PostImage(media_id, generated=True)


def _store_posts(session: Session, user_id: int, require_approval: bool, drafts: list[DraftPost], *,
                 todo_keys: set[tuple[str, datetime]], execution_id: int, now: datetime,
                 images: dict[tuple[str, datetime], _PostImage] | None = None) -> list[int]:
    """Insert the usable drafts in one statement and audit each; returns the new posts' ids.

    A slot a racing run filled since ``todo_keys`` was read is skipped (``ON CONFLICT DO
    NOTHING`` on the unique user, platform and slot), as is a blank, over-long or unasked-for
    draft. Ids and audit rows follow the drafts' order. ``images`` (from :func:`_images_for`)
    gives each draft's image; a draft without one stays text only.
    """
    rows: list[dict[str, Any]] = []
    images = images or {}
    for draft in drafts:
        key = (draft.platform, draft.slot_at)
        text = normalize_newlines(draft.text).strip()
        if key not in todo_keys or not text or limit_error(draft.platform, text):
            continue  # never a blank, broken or off-schedule post
        todo_keys.discard(key)
        image = images.get(key, _PostImage(None))
        media_id = image.media_id
        rows.append({"user_id": user_id, "platform": draft.platform, "text": text, "media_id": media_id,
                     "topic": (draft.topic or "").strip()[:MAX_TOPIC_CHARS] or None, "created_at": now,
                     "scheduled_at": draft.slot_at, "slot_at": draft.slot_at, "execution_id": execution_id,
                     "status": PostStatus.NEEDS_REVIEW if require_approval else PostStatus.SCHEDULED,
                     "review_reason": ReviewReason.APPROVAL if require_approval else None,
                     "_image": image})
    if not rows:
        return []
    statement = insert_skipping_conflicts(session, Post, keys=UNIQUE_SLOT)
    post_images = [row.pop("_image") for row in rows]
    inserted = {(platform, slot_at): post_id for post_id, platform, slot_at
                in session.execute(statement.returning(Post.id, Post.platform, Post.slot_at), rows)}
    stored: list[int] = []
    for row, image in zip(rows, post_images, strict=True):
        post_id = inserted.get((row["platform"], row["slot_at"]))
        if post_id is None:
            continue  # the slot was filled meanwhile: unique per user, platform and slot
        stored.append(post_id)
        details = {"platform": row["platform"], "at": row["scheduled_at"].isoformat(), "topic": row["topic"]}
        if row["media_id"] is not None:
            details["media_id"] = row["media_id"]
        if image.generated:
            details["image_generated"] = True
        if image.error:
            details["image_error"] = image.error
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
