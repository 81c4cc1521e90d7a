"""A missed slot's catch-up is sent once, not every minute, while no worker takes its queue.

The minute tick's own code (``run_tick``) on PostgreSQL, ten ticks in a row with nothing
consuming the catch-ups (no slot gets claimed): each missed slot is asked for once. A slot
that has run is never asked for again, and the record of a send is forgotten once its slot's
catch-up window is over.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from app.clock import SettableClock
from app.intents import RunSlot
from app.jobs import claim_slot
from app.models import CatchUpSend
from app.runtime import Runtime
from app.workflows.ticks import run_tick
from tests.workflows.test_ticks import SLOT

#: Minute ticks with no consumer on the catch-ups' queues.
TICKS = 10


def tick(runtime: Runtime, clock: SettableClock, minute: int) -> list[RunSlot]:
    clock.now = SLOT + timedelta(minutes=minute)
    result = run_tick(runtime, "dispatch_due_posts", clock.now, trigger="periodic", message_id=f"tick-{minute}")
    assert result.claimed
    return [i for i in result.intents if isinstance(i, RunSlot)]


def sends(runtime: Runtime) -> int:
    with runtime.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(CatchUpSend)) or 0)


def test_each_missed_slot_is_sent_once_over_ten_ticks_without_a_worker(runtime: Runtime,
                                                                      clock: SettableClock) -> None:
    asked = Counter((i.job, i.slot) for minute in range(3, 3 + TICKS) for i in tick(runtime, clock, minute))
    # Thursday 06:03-06:12: today's generation (06:00) and metrics (02:00) were missed.
    assert asked == {("daily_generation", SLOT): 1, ("metrics_collection", SLOT.replace(hour=2)): 1}


def test_a_slot_that_ran_is_not_sent_and_sends_are_forgotten_after_the_window(
        runtime: Runtime, clock: SettableClock) -> None:
    assert {i.job for i in tick(runtime, clock, 3)} == {"daily_generation", "metrics_collection"}
    with runtime.session_factory() as session, session.begin():
        assert claim_slot(session, "daily_generation", SLOT, trigger="catch_up", message_id="m", now=clock.now)
    assert tick(runtime, clock, 4) == []
    assert sends(runtime) == 2
    # Two days on: both windows are over, the records are gone; the new day's slots are sent once.
    days = 2 * 24 * 60
    assert {(i.job, i.slot) for i in tick(runtime, clock, days + 3)} == {
        ("daily_generation", SLOT + timedelta(days=2)), ("metrics_collection", SLOT.replace(hour=2) + timedelta(days=2))}
    assert tick(runtime, clock, days + 4) == []
    assert sends(runtime) == 2


def test_an_in_process_restart_sends_the_lost_catch_ups_again(runtime: Runtime, clock: SettableClock) -> None:
    from app.workflows.ticks import recovery_intents

    assert len(tick(runtime, clock, 3)) == 2
    assert tick(runtime, clock, 4) == []
    lost = [i for i in recovery_intents(runtime, clock.now, messages_lost=True) if isinstance(i, RunSlot)]
    assert {i.job for i in lost} == {"daily_generation", "metrics_collection"}
    assert tick(runtime, clock, 5) == []
