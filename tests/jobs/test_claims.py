"""Every periodic slot runs once: racing schedulers, redeliveries, manual triggers, catch-up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.jobs import claim_slot, missed_slots
from app.models import JobRun, Post, WorkflowExecution
from app.workflows.generation import generate_for_user
from app.workflows.jobs import JOBS
from app.workflows.ticks import finish_tick, run_tick
from tests.factories import make_users

SLOT = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def test_two_schedulers_ticking_the_same_slot_give_one_run(runtime):
    make_users(runtime, 3)
    barrier = threading.Barrier(8)
    results = []

    def tick(n: int) -> None:
        barrier.wait()
        results.append(run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id=f"msg-{n}"))

    threads = [threading.Thread(target=tick, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [r for r in results if r.claimed]
    assert len(claimed) == 1 and len(claimed[0].intents) == 3
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 1
        assert session.scalar(select(func.count()).select_from(WorkflowExecution)) == 3


def test_manual_trigger_after_a_run_does_nothing(runtime):
    make_users(runtime, 1)
    first = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="a")
    finish_tick(runtime, "daily_generation", SLOT, sent=len(first.intents))
    assert not run_tick(runtime, "daily_generation", SLOT, trigger="manual", message_id="b").claimed
    # Even the same message, redelivered after the run finished, does nothing.
    assert not run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="a").claimed


def test_redelivered_message_resumes_an_interrupted_fan_out(runtime):
    make_users(runtime, 4)
    first = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="m1")
    # The worker died before finishing: another message may not take over, the same one may.
    assert not run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="m2").claimed
    again = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="m1")
    assert again.claimed and again.intents == first.intents


def test_fan_out_then_each_user_exactly_once_even_with_duplicate_messages(runtime):
    make_users(runtime, 3)
    result = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="m")
    for out in result.intents + result.intents:  # every message delivered twice
        generate_for_user(runtime, out.execution_id, message_id=None)
    with runtime.session_factory() as session:
        statuses = session.scalars(select(WorkflowExecution.status)).all()
        assert statuses == ["succeeded"] * 3
        posts = session.scalar(select(func.count()).select_from(Post))
    # 14 a week = 2 a day per platform; NY 09:00/10:00/17:00 local fall inside 06:00Z..06:00Z.
    assert posts == 3 * 4


def test_a_crashed_execution_is_resumed_by_its_own_redelivery_only(runtime, clock):
    make_users(runtime, 1)
    (out,) = run_tick(runtime, "daily_generation", SLOT, trigger="periodic", message_id="m").intents
    from app.workflows.executions import claim_execution

    with runtime.session_factory() as session, session.begin():
        assert claim_execution(session, out.execution_id, message_id="worker-1", now=clock.now)
    # The worker died mid-run. A different message does nothing; the redelivery resumes.
    assert generate_for_user(runtime, out.execution_id, message_id="other") is None
    execution = generate_for_user(runtime, out.execution_id, message_id="worker-1")
    assert execution is not None and execution.status == "succeeded"


def test_missed_daily_slot_is_caught_up_once(runtime, clock):
    clock.now = SLOT + timedelta(hours=2, minutes=5)  # the scheduler was down at 06:00
    with runtime.session_factory() as session:
        missed = missed_slots(session, clock.now, JOBS)
    assert ("daily_generation", SLOT) in missed
    run_tick(runtime, "daily_generation", SLOT, trigger="catch_up", message_id="c1")
    finish_tick(runtime, "daily_generation", SLOT, sent=0)
    with runtime.session_factory() as session:
        assert ("daily_generation", SLOT) not in missed_slots(session, clock.now, JOBS)
    # A second catch-up (another scheduler) cannot run it again.
    assert not run_tick(runtime, "daily_generation", SLOT, trigger="catch_up", message_id="c2").claimed


def test_a_slot_older_than_the_window_is_not_caught_up(runtime):
    with runtime.session_factory() as session:
        late = SLOT + timedelta(hours=6, minutes=1)
        assert ("daily_generation", SLOT) not in missed_slots(session, late, JOBS)
        assert ("weekly_report", JOBS["weekly_report"].latest_fire(late)) not in missed_slots(session, late, JOBS)


def test_claim_slot_is_unique_per_job_and_slot(runtime, clock):
    with runtime.session_factory() as session, session.begin():
        assert claim_slot(session, "weekly_report", SLOT, trigger="periodic", message_id="x", now=clock.now)
        assert claim_slot(session, "weekly_report", SLOT, trigger="manual", message_id=None, now=clock.now) is None
        assert claim_slot(session, "daily_generation", SLOT, trigger="periodic", message_id="y", now=clock.now)


def test_old_claims_of_frequent_jobs_are_pruned_daily_ones_kept(runtime, clock):
    from app.jobs import prune_job_runs

    old = SLOT - timedelta(days=8)
    with runtime.session_factory() as session, session.begin():
        for job in ("dispatch_due_posts", "daily_generation"):
            run = claim_slot(session, job, old, trigger="periodic", message_id=None, now=old)
            run.status = "succeeded"
        claim_slot(session, "dispatch_due_posts", SLOT, trigger="periodic", message_id=None, now=SLOT)
    with runtime.session_factory() as session, session.begin():
        assert prune_job_runs(session, SLOT, JOBS) == 1
    with runtime.session_factory() as session:
        assert sorted(session.execute(select(JobRun.job, JobRun.slot)).all()) == [
            ("daily_generation", old), ("dispatch_due_posts", SLOT)]
