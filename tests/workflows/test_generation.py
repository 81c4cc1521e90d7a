"""Daily generation on PostgreSQL with offline providers: once per slot, on the user's schedule.

Each test drives the workflow as the actor layer would: ``run_tick`` claims the daily slot and
fans out one execution per opted-in user, then ``generate_for_user`` runs each message.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from app.intents import RunUserStep
from app.models import (
    AuditLog,
    ExecutionStatus,
    MemoryEntry,
    Notification,
    Post,
    PostStatus,
    UserSettings,
    WorkflowExecution,
)
from app.providers.base import ContentBrief, DraftPost, ResearchItem
from app.providers.errors import GenerationError
from app.providers.offline import TemplateGeneration
from app.runtime import Runtime
from app.text_limits import fits_platform
from app.users import create_user
from app.workflows.generation import fan_out_generation, generate_for_user
from app.workflows.ticks import run_tick

SLOT = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # Thursday, the daily generation slot
DAY = timedelta(days=1)

#: America/New_York (EST, UTC-5 in November), frequency 14: X at 09:00 and the derived 15:30,
#: LinkedIn at 10:00 and 17:00 local.
NEW_YORK = {"timezone": "America/New_York", "preferred_platforms": ["twitter", "linkedin"],
            "posting_times": {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]},
            "content_frequency": 14, "topics": ["python"], "enable_autonomous_mode": True}
NEW_YORK_SLOTS = {
    ("twitter", datetime(2026, 11, 26, 14, 0, tzinfo=UTC)),
    ("linkedin", datetime(2026, 11, 26, 15, 0, tzinfo=UTC)),
    ("twitter", datetime(2026, 11, 26, 20, 30, tzinfo=UTC)),
    ("linkedin", datetime(2026, 11, 26, 22, 0, tzinfo=UTC)),
}


# -- helpers ----------------------------------------------------------------------------------


def add_user(runtime: Runtime, email: str, **overrides: Any) -> int:
    with runtime.session_factory() as session, session.begin():
        return create_user(session, email, {**NEW_YORK, **overrides}).id


def run_day(runtime: Runtime, slot: datetime = SLOT, *, message_id: str = "tick",
            trigger: str = "periodic") -> list[WorkflowExecution]:
    """The tick for ``slot`` and every per-user message it asks for; returns the executions."""
    result = run_tick(runtime, "daily_generation", slot, trigger=trigger, message_id=f"{message_id}-{slot:%Y%m%d%H%M}")
    assert result.claimed
    executions = []
    for message in result.intents:
        assert message == RunUserStep("daily_generation", message.execution_id)
        execution_id = message.execution_id
        execution = generate_for_user(runtime, execution_id, message_id=f"gen-{execution_id}")
        assert execution is not None
        executions.append(execution)
    return executions


def posts_of(runtime: Runtime, user_id: int | None = None) -> list[Post]:
    with runtime.session_factory() as session:
        query = select(Post).order_by(Post.scheduled_at, Post.platform)
        if user_id is not None:
            query = query.where(Post.user_id == user_id)
        return list(session.scalars(query))


def count(runtime: Runtime, model: type, *where: Any) -> int:
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


class RecordingGeneration:
    """The offline generator, keeping every brief and letting a test rewrite the drafts."""

    name = "recording"
    offline = True

    def __init__(self, rewrite=None) -> None:  # type: ignore[no-untyped-def]
        self.inner = TemplateGeneration()
        self.briefs: list[ContentBrief] = []
        self.rewrite = rewrite

    def generate(self, brief: ContentBrief) -> list[DraftPost]:
        self.briefs.append(brief)
        drafts = self.inner.generate(brief)
        return self.rewrite(drafts) if self.rewrite else drafts


class FailingGeneration:
    name = "failing"
    offline = False

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, brief: ContentBrief) -> list[DraftPost]:
        self.calls += 1
        raise GenerationError("no usable post after 3 attempt(s): the model refused")


class ScriptedResearch:
    """Research answering a fixed list of links per UTC day."""

    name = "scripted-research"
    offline = True

    def __init__(self, links_by_day: dict[date, list[str]]) -> None:
        self.links_by_day = links_by_day

    def search(self, topic: str, *, language: str, country: str, now: datetime) -> list[ResearchItem]:
        return [ResearchItem(title=f"{topic} story {i}", link=link, snippet=f"About {topic}.",
                             published_at=now - timedelta(hours=i + 1), source="example.org")
                for i, link in enumerate(self.links_by_day[now.astimezone(UTC).date()])]


# -- once per slot ----------------------------------------------------------------------------


def test_running_the_same_day_twice_creates_nothing_new(runtime, clock):
    user = add_user(runtime, "ny@example.com")
    first = run_day(runtime)
    assert [e.status for e in first] == [ExecutionStatus.SUCCEEDED]
    assert first[0].counts["generated"] == 4
    before = [(p.id, p.platform, p.slot_at, p.text) for p in posts_of(runtime)]
    assert len(before) == 4

    # A second scheduler, a manual trigger: the slot is claimed, nothing is fanned out again.
    assert not run_tick(runtime, "daily_generation", SLOT, trigger="manual", message_id="other").claimed
    # Even a fan-out forced past the claim creates no second execution for the same slot.
    with runtime.session_factory() as session, session.begin():
        assert fan_out_generation(session, SLOT, now=clock.now) == []
    assert count(runtime, WorkflowExecution) == 1
    # The same per-user message redelivered does nothing.
    assert generate_for_user(runtime, first[0].id, message_id=f"gen-{first[0].id}") is None

    # A new execution of the same slot (the old row purged), run to the end, adds 0 posts.
    with runtime.session_factory() as session, session.begin():
        session.execute(delete(WorkflowExecution))
        (again_id,) = fan_out_generation(session, SLOT, now=clock.now)
    again = generate_for_user(runtime, again_id, message_id="forced")
    assert again is not None and again.status == ExecutionStatus.SUCCEEDED
    assert again.counts["generated"] == 0 and again.counts["already_scheduled"] == 4
    assert [(p.id, p.platform, p.slot_at, p.text) for p in posts_of(runtime)] == before
    assert count(runtime, AuditLog, AuditLog.action == "post.generated", AuditLog.user_id == user) == 4


def test_racing_generation_for_the_same_slot_keeps_one_post_per_slot(runtime, clock):
    """Two executions of the same slot (one purged and re-fanned mid-way) never duplicate a slot."""
    add_user(runtime, "ny@example.com")
    generation = RecordingGeneration()
    runtime.providers.generation = generation
    with runtime.session_factory() as session, session.begin():
        (first_id,) = fan_out_generation(session, SLOT, now=clock.now)
    # The first execution writes only two of the four slots (the generator dropped the others).
    generation.rewrite = lambda drafts: drafts[:2]
    generate_for_user(runtime, first_id, message_id="a")
    assert len(posts_of(runtime)) == 2
    with runtime.session_factory() as session, session.begin():
        session.execute(delete(WorkflowExecution))
        (second_id,) = fan_out_generation(session, SLOT, now=clock.now)
    generation.rewrite = None
    second = generate_for_user(runtime, second_id, message_id="b")
    assert second is not None
    assert second.counts["already_scheduled"] == 2 and second.counts["generated"] == 2
    # Only the two empty slots were asked for the second time.
    assert len(generation.briefs[1].slots) == 2
    assert {(p.platform, p.slot_at) for p in posts_of(runtime)} == NEW_YORK_SLOTS


def test_a_slot_filled_by_a_racing_run_while_the_model_writes_is_skipped(runtime, clock):
    """Between reading the free slots and storing the drafts another run fills one: its post
    stays, this run's draft for that slot is dropped, the others are stored and audited in order."""
    user = add_user(runtime, "ny@example.com")

    def fill_the_first_slot_meanwhile(drafts: list[DraftPost]) -> list[DraftPost]:
        with runtime.session_factory() as session, session.begin():
            session.add(Post(user_id=user, platform=drafts[0].platform, text="written by the other run",
                             scheduled_at=drafts[0].slot_at, slot_at=drafts[0].slot_at, created_at=clock.now))
        return drafts

    runtime.providers.generation = RecordingGeneration(fill_the_first_slot_meanwhile)
    (execution,) = run_day(runtime)
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    assert execution.counts["generated"] == 3 and execution.counts["empty_slots"] == 1
    posts = posts_of(runtime, user)
    assert {(p.platform, p.slot_at) for p in posts} == NEW_YORK_SLOTS
    assert [p.text for p in posts].count("written by the other run") == 1
    ours = sorted(p.id for p in posts if p.execution_id == execution.id)
    assert len(ours) == 3
    with runtime.session_factory() as session:
        audit = session.execute(select(AuditLog.action, AuditLog.post_id).where(AuditLog.user_id == user,
                                AuditLog.action.like("post.%")).order_by(AuditLog.id)).all()
        ideas = session.scalars(select(MemoryEntry.content).where(MemoryEntry.kind == "idea")).all()
    assert [tuple(row) for row in audit] == [
        (action, post_id) for post_id in ours for action in ("post.generated", "post.scheduled")]
    assert ideas and all(content == {"posts": ours} for content in ideas)


# -- where posts land -------------------------------------------------------------------------


def test_posts_land_at_the_users_local_slots_in_utc(runtime):
    ny = add_user(runtime, "ny@example.com")
    # India (UTC+05:30) at 09:00 local, daily: the 26th's 09:00 is 03:30Z, before the window;
    # the 27th's 09:00 is 03:30Z on the 27th, inside [06:00Z, 06:00Z + 24 h).
    kolkata = add_user(runtime, "in@example.com", timezone="Asia/Kolkata", preferred_platforms=["twitter"],
                       posting_times={"twitter": ["09:00"]}, content_frequency=7)
    # Sydney (UTC+11 in November), LinkedIn at 07:00 local: 20:00Z on the 26th.
    sydney = add_user(runtime, "au@example.com", timezone="Australia/Sydney", preferred_platforms=["linkedin"],
                      posting_times={"linkedin": ["07:00"]}, content_frequency=7)
    executions = run_day(runtime)
    assert all(e.status == ExecutionStatus.SUCCEEDED for e in executions), [e.error for e in executions]

    ny_posts = posts_of(runtime, ny)
    assert {(p.platform, p.scheduled_at) for p in ny_posts} == NEW_YORK_SLOTS
    assert {(p.platform, p.scheduled_at) for p in posts_of(runtime, kolkata)} == {
        ("twitter", datetime(2026, 11, 27, 3, 30, tzinfo=UTC))}
    # Sydney's 07:00 on the 27th is 20:00Z on the 26th, inside; the 28th's is outside.
    assert {(p.platform, p.scheduled_at) for p in posts_of(runtime, sydney)} == {
        ("linkedin", datetime(2026, 11, 26, 20, 0, tzinfo=UTC))}
    for post in posts_of(runtime):
        assert SLOT <= post.scheduled_at < SLOT + DAY
        assert post.slot_at == post.scheduled_at
        assert post.status == PostStatus.SCHEDULED and post.review_reason is None
        assert post.origin == "autonomous" and post.execution_id is not None
        assert fits_platform(post.platform, post.text), post.text
    # Audit: one "generated" and one "scheduled" row per post.
    for post in ny_posts:
        assert count(runtime, AuditLog, AuditLog.post_id == post.id, AuditLog.action == "post.generated") == 1
        assert count(runtime, AuditLog, AuditLog.post_id == post.id, AuditLog.action == "post.scheduled") == 1

    # Tomorrow's window starts where today's ended: no slot is seen twice, none is skipped.
    run_day(runtime, SLOT + DAY)
    assert {(p.platform, p.scheduled_at) for p in posts_of(runtime, kolkata)} == {
        ("twitter", datetime(2026, 11, 27, 3, 30, tzinfo=UTC)),
        ("twitter", datetime(2026, 11, 28, 3, 30, tzinfo=UTC)),
    }
    assert len(posts_of(runtime, ny)) == 8


def test_require_approval_posts_wait_for_review_with_audit_rows(runtime):
    user = add_user(runtime, "careful@example.com", require_approval=True)
    (execution,) = run_day(runtime)
    posts = posts_of(runtime, user)
    assert execution.counts["generated"] == len(posts) == 4
    for post in posts:
        assert post.status == PostStatus.NEEDS_REVIEW and post.review_reason == "approval"
        with runtime.session_factory() as session:
            rows = list(session.scalars(select(AuditLog).where(AuditLog.post_id == post.id).order_by(AuditLog.id)))
        assert [r.action for r in rows] == ["post.generated", "post.reviewed"]
        assert rows[1].details["reason"] == "approval" and rows[1].actor == "autopilot"
        assert rows[1].details["platform"] == post.platform
    assert count(runtime, AuditLog, AuditLog.action == "post.scheduled") == 0


def test_autonomous_mode_turned_off_after_fan_out_generates_nothing(runtime):
    user = add_user(runtime, "quitter@example.com")
    result = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="t")
    (message,) = result.intents
    with runtime.session_factory() as session, session.begin():
        session.execute(update(UserSettings).where(UserSettings.user_id == user)
                        .values(enable_autonomous_mode=False))
    execution = generate_for_user(runtime, message.execution_id, message_id="m")
    assert execution is not None and execution.status == ExecutionStatus.SUCCEEDED
    assert "skipped" in execution.counts and execution.error is None
    assert posts_of(runtime) == []
    assert count(runtime, MemoryEntry) == 0 and count(runtime, Notification) == 0


# -- memory -----------------------------------------------------------------------------------


def test_research_and_ideas_are_remembered_and_recent_links_not_reused(runtime, clock):
    user = add_user(runtime, "mem@example.com")
    day1, day2, day3 = SLOT.date(), (SLOT + DAY).date(), (SLOT + 2 * DAY).date()
    runtime.providers.research = ScriptedResearch({
        day1: ["https://a.example.org/1", "https://a.example.org/2"],
        day2: ["https://a.example.org/1", "https://a.example.org/2", "https://a.example.org/3"],
        day3: ["https://a.example.org/1", "https://a.example.org/2"],  # nothing new today
    })
    generation = RecordingGeneration()
    runtime.providers.generation = generation

    run_day(runtime)
    with runtime.session_factory() as session:
        research = session.scalars(select(MemoryEntry).where(MemoryEntry.user_id == user,
                                                             MemoryEntry.kind == "research")).all()
        ideas = session.scalars(select(MemoryEntry.key).where(MemoryEntry.user_id == user,
                                                              MemoryEntry.kind == "idea")).all()
    assert len(research) == 1 and research[0].key == "research:2026-11-26"
    assert research[0].content["topics"] == ["python"]
    assert [i["link"] for i in research[0].content["items"]] == ["https://a.example.org/1", "https://a.example.org/2"]
    assert sorted(ideas) == ["https://a.example.org/1", "https://a.example.org/2"]

    clock.now = SLOT + DAY
    run_day(runtime, SLOT + DAY)
    assert [r.link for r in generation.briefs[1].research] == ["https://a.example.org/3"]
    # Yesterday's texts are shown to the generator so it does not repeat itself.
    day1_texts = {p.text for p in posts_of(runtime, user) if p.slot_at < SLOT + DAY}
    assert day1_texts == set(generation.briefs[1].recent_posts)
    assert len(generation.briefs[1].recent_posts) == 4
    # Day 3 brings nothing fresh: an old link from a new angle beats no post.
    clock.now = SLOT + 2 * DAY
    run_day(runtime, SLOT + 2 * DAY)
    assert {r.link for r in generation.briefs[2].research} == {"https://a.example.org/1", "https://a.example.org/2"}
    assert len(posts_of(runtime, user)) == 12


def test_links_used_more_than_14_days_ago_may_be_used_again(runtime, clock):
    user = add_user(runtime, "old@example.com")
    with runtime.session_factory() as session, session.begin():
        session.add_all([
            MemoryEntry(user_id=user, kind="idea", key="https://a.example.org/old", created_at=SLOT - timedelta(days=15)),
            MemoryEntry(user_id=user, kind="idea", key="https://a.example.org/recent", created_at=SLOT - timedelta(days=13)),
        ])
    runtime.providers.research = ScriptedResearch({SLOT.date(): [
        "https://a.example.org/old", "https://a.example.org/recent", "https://a.example.org/new"]})
    generation = RecordingGeneration()
    runtime.providers.generation = generation
    run_day(runtime)
    assert [r.link for r in generation.briefs[0].research] == ["https://a.example.org/old", "https://a.example.org/new"]


def test_weekly_insights_reach_the_brief(runtime):
    user = add_user(runtime, "insight@example.com")
    with runtime.session_factory() as session, session.begin():
        session.add(MemoryEntry(user_id=user, kind="insight", key="weekly:2026-11-16", created_at=SLOT - 9 * DAY,
                                content={"recommendations": ["Older advice.", "Ask a question at the end."]}))
        session.add(MemoryEntry(user_id=user, kind="insight", key="weekly:2026-11-23", created_at=SLOT - 2 * DAY,
                                content={"recommendations": ["LinkedIn posts at 17:00 do best.",
                                                             "Ask a question at the end."]}))
    generation = RecordingGeneration()
    runtime.providers.generation = generation
    run_day(runtime)
    (brief,) = generation.briefs
    # Newest report first, each sentence once.
    assert brief.insights == ["LinkedIn posts at 17:00 do best.", "Ask a question at the end.", "Older advice."]
    assert brief.brand_voice == "professional" and brief.topics == ["python"]
    assert {(s.platform, s.slot_at) for s in brief.slots} == NEW_YORK_SLOTS


# -- failures ---------------------------------------------------------------------------------


def test_generation_error_fails_the_execution_and_notifies_once_within_20_hours(runtime, clock):
    user = add_user(runtime, "fail@example.com")
    failing = FailingGeneration()
    runtime.providers.generation = failing
    (execution,) = run_day(runtime)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error is not None and execution.error.startswith("GenerationError: no usable post")
    assert posts_of(runtime) == []
    with runtime.session_factory() as session:
        stored = session.get(WorkflowExecution, execution.id)
        assert stored is not None and stored.status == ExecutionStatus.FAILED and stored.error == execution.error
        notes = session.scalars(select(Notification).where(Notification.user_id == user)).all()
    assert [(n.kind, n.severity) for n in notes] == [("generation_failed", "error")]
    assert "GenerationError" in notes[0].body and notes[0].created_at == SLOT

    # A manual run of another slot 10 hours later fails again: no second notification.
    clock.now = SLOT + timedelta(hours=10)
    (second,) = run_day(runtime, SLOT + timedelta(hours=10), trigger="manual")
    assert second.status == ExecutionStatus.FAILED
    assert count(runtime, Notification, Notification.kind == "generation_failed") == 1
    # The next day (24 h later, past the 20 h window) the user hears about it again.
    clock.now = SLOT + DAY
    (third,) = run_day(runtime, SLOT + DAY)
    assert third.status == ExecutionStatus.FAILED
    assert count(runtime, Notification, Notification.kind == "generation_failed") == 2
    assert failing.calls == 3 and posts_of(runtime) == []


def test_over_limit_or_blank_draft_leaves_only_that_slot_empty(runtime):
    user = add_user(runtime, "limits@example.com")

    def spoil(drafts: list[DraftPost]) -> list[DraftPost]:
        out = []
        for d in drafts:
            if (d.platform, d.slot_at) == ("twitter", datetime(2026, 11, 26, 14, 0, tzinfo=UTC)):
                d = replace(d, text="word " * 60)  # 299 weighted characters
            elif (d.platform, d.slot_at) == ("linkedin", datetime(2026, 11, 26, 22, 0, tzinfo=UTC)):
                d = replace(d, text=" \n\t ")
            out.append(d)
        # An unrequested slot is never stored either.
        out.append(DraftPost("twitter", datetime(2026, 11, 26, 12, 0, tzinfo=UTC), "Off schedule #python"))
        return out

    runtime.providers.generation = RecordingGeneration(spoil)
    (execution,) = run_day(runtime)
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert execution.counts["generated"] == 2 and execution.counts["empty_slots"] == 2
    assert {(p.platform, p.slot_at) for p in posts_of(runtime, user)} == {
        ("linkedin", datetime(2026, 11, 26, 15, 0, tzinfo=UTC)),
        ("twitter", datetime(2026, 11, 26, 20, 30, tzinfo=UTC)),
    }
    for post in posts_of(runtime):
        assert fits_platform(post.platform, post.text)


def test_late_catch_up_skips_slots_past_the_grace(runtime, clock):
    # Berlin (UTC+1): X at 08:00 (07:00Z) and derived 15:00 (14:00Z); LinkedIn 09:30 (08:30Z)
    # and 10:00 (09:00Z). The run happens at 10:00Z, four hours after its slot.
    user = add_user(runtime, "late@example.com", timezone="Europe/Berlin",
                    posting_times={"twitter": ["08:00"], "linkedin": ["09:30", "10:00"]})
    clock.now = SLOT + timedelta(hours=4)
    (execution,) = run_day(runtime, trigger="catch_up")
    assert execution.counts["slots"] == 4
    assert execution.counts["missed"] == 2 and execution.counts["generated"] == 2
    # 09:00Z is exactly 60 minutes old: still inside the grace, as the dispatcher sees it too.
    assert {(p.platform, p.scheduled_at) for p in posts_of(runtime, user)} == {
        ("linkedin", datetime(2026, 11, 26, 9, 0, tzinfo=UTC)),
        ("twitter", datetime(2026, 11, 26, 14, 0, tzinfo=UTC)),
    }


def test_every_generated_text_fits_its_platform(runtime):
    voices = ["professional", "casual and warm", "playful", "bold", "dry"]
    topics = [["python"], ["人工知能", "機械学習"], ["open-source AI developer tools for very large organisations"],
              ["climate 🌍 tech", "remote work"], ["rust"]]
    users = [add_user(runtime, f"fit{i}@example.com", brand_voice=voice, topics=topic)
             for i, (voice, topic) in enumerate(zip(voices, topics, strict=True))]
    executions = run_day(runtime)
    assert all(e.status == ExecutionStatus.SUCCEEDED for e in executions), [e.error for e in executions]
    posts = posts_of(runtime)
    assert len(posts) == 4 * len(users)
    for post in posts:
        assert fits_platform(post.platform, post.text), (post.platform, post.text)


# -- regressions: bugs found by these tests and fixed -----------------------------------------------


def test_an_over_long_topic_does_not_cost_the_whole_day(runtime):
    user = add_user(runtime, "topic@example.com")
    runtime.providers.generation = RecordingGeneration(
        lambda drafts: [replace(d, topic="t" * 301) if i == 0 else d for i, d in enumerate(drafts)])
    (execution,) = run_day(runtime)
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    assert len(posts_of(runtime, user)) == 4


def test_a_long_link_used_yesterday_is_not_reused_today(runtime, clock):
    add_user(runtime, "long@example.com")
    long_link = "https://a.example.org/" + "p" * 320
    runtime.providers.research = ScriptedResearch({
        SLOT.date(): [long_link, "https://a.example.org/x"],
        (SLOT + DAY).date(): [long_link, "https://a.example.org/y"],
    })
    generation = RecordingGeneration()
    runtime.providers.generation = generation
    run_day(runtime)
    clock.now = SLOT + DAY
    run_day(runtime, SLOT + DAY)
    assert [r.link for r in generation.briefs[1].research] == ["https://a.example.org/y"]


def test_recent_posts_follow_the_runtime_clock(runtime, clock):
    add_user(runtime, "recent@example.com")
    generation = RecordingGeneration()
    runtime.providers.generation = generation
    # The demo's fast-forwarded clock, a month ahead of the wall clock (whenever the suite runs).
    later = datetime.combine((datetime.now(UTC) + 30 * DAY).date(), time(6, 0), tzinfo=UTC)
    clock.now = later
    run_day(runtime, later)
    clock.now = later + DAY
    run_day(runtime, later + DAY)
    yesterday = {p.text for p in posts_of(runtime) if p.slot_at < later + DAY}
    assert yesterday and yesterday <= set(generation.briefs[1].recent_posts)


# -- images -------------------------------------------------------------------------------------


def test_a_post_gets_a_library_image_whose_tags_match_its_topic(runtime, tmp_path):
    from app.media.library import add_image
    from app.media.storage import LocalStorage
    from tests.media.images import image_bytes

    storage = LocalStorage(tmp_path, "https://cdn.example.test")
    ada = add_user(runtime, "ada@example.com")
    bob = add_user(runtime, "bob@example.com", topics=["gardening"])
    with runtime.session_factory() as session, session.begin():
        snake = add_image(session, storage, ada, image_bytes(), alt_text="A python on a branch", tags="python").id
        add_image(session, storage, ada, image_bytes(), alt_text="Tomatoes", tags="gardening")
    run_day(runtime)
    adas, bobs = posts_of(runtime, ada), posts_of(runtime, bob)
    assert len(adas) == 4 and {p.media_id for p in adas} == {snake}
    assert bobs and all(p.media_id is None for p in bobs)  # no library: text only


def test_choosing_an_image_prefers_more_matching_tags_then_the_least_used():
    from app.media.library import choose_image

    library = [(1, ["python"]), (2, ["python", "testing"]), (3, ["python"])]
    assert choose_image(library, "Testing Python code", {}) == 2
    assert choose_image(library, "Python tips", {1: 2, 3: 1, 2: 5}) == 3
    assert choose_image(library, "Gardening", {}) is None
