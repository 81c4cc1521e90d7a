"""Steps every deployment runs for the job machinery itself: catching up, pruning claims."""

from __future__ import annotations

from collections.abc import Sequence

from app.intents import Intent, RunSlot
from app.jobs.claims import missed_slots, prune_job_runs
from app.jobs.spec import Step, Tick

__all__ = ["CATCH_UP_MISSED_SLOTS", "PRUNE_OLD_CLAIMS"]


def _catch_up(tick: Tick) -> Sequence[Intent]:
    with tick.runtime.session_factory() as session:
        missed = missed_slots(session, tick.now, tick.jobs)
    return [RunSlot(job, slot) for job, slot in missed]


def _prune(tick: Tick) -> Sequence[Intent]:
    with tick.runtime.session_factory() as session, session.begin():
        prune_job_runs(session, tick.now, tick.jobs)
    return []


CATCH_UP_MISSED_SLOTS = Step(
    "catch_up_missed_slots",
    "Run once, late, each daily or weekly slot missed while the scheduler or workers were down "
    "(within its catch-up window)",
    _catch_up)

PRUNE_OLD_CLAIMS = Step(
    "prune_old_claims",
    "Delete week-old slot claims of the every-minute and quarter-hour jobs",
    _prune)
