"""Steps every deployment runs for the job machinery itself: catching up, pruning claims."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from app.intents import Intent, RunSlot
from app.jobs.claims import DEFAULT_CATCH_UP_SETTLE, missed_slots, prune_job_runs
from app.jobs.spec import PeriodicJob, Step, Tick
from app.models import CatchUpSend

__all__ = ["CATCH_UP_MISSED_SLOTS", "PRUNE_OLD_CLAIMS", "catch_ups_to_send"]


def catch_ups_to_send(session: Session, now: datetime, jobs: Mapping[str, PeriodicJob], *,
                      messages_lost: bool = False) -> list[tuple[str, datetime]]:
    """The missed slots whose catch-up was not sent yet, recorded as sent (in the caller's
    transaction); sends of slots whose window is over are forgotten.

    A slot's catch-up is sent once: while no worker consumes its queue the slot stays
    unclaimed, and sending it again every minute would only grow the queue. ``messages_lost``
    (an in-process broker restarted): the earlier sends died with it, every missed slot is sent.
    """
    windows = [job.catch_up for job in jobs.values() if job.catch_up is not None]
    if windows:
        forget_before = now - max(windows) - DEFAULT_CATCH_UP_SETTLE
        session.execute(delete(CatchUpSend).where(CatchUpSend.slot < forget_before)
                        .execution_options(synchronize_session=False))
    missed = missed_slots(session, now, jobs)
    if not missed:
        return []
    earlier = tuple_(CatchUpSend.job, CatchUpSend.slot).in_(missed)
    if messages_lost:
        session.execute(delete(CatchUpSend).where(earlier).execution_options(synchronize_session=False))
    sent = {tuple(row) for row in session.execute(select(CatchUpSend.job, CatchUpSend.slot).where(earlier))}
    todo = [(job, slot) for job, slot in missed if (job, slot) not in sent]
    session.add_all(CatchUpSend(job=job, slot=slot, sent_at=now) for job, slot in todo)
    return todo


def _catch_up(tick: Tick) -> Sequence[Intent]:
    with tick.runtime.session_factory() as session, session.begin():
        todo = catch_ups_to_send(session, tick.now, tick.jobs, messages_lost=tick.messages_lost)
    return [RunSlot(job, slot) for job, slot in todo]


def _prune(tick: Tick) -> Sequence[Intent]:
    with tick.runtime.session_factory() as session, session.begin():
        prune_job_runs(session, tick.now, tick.jobs)
    return []


CATCH_UP_MISSED_SLOTS = Step(
    "catch_up_missed_slots",
    "Run once, late, each daily or weekly slot missed while the scheduler or workers were down "
    "(within its catch-up window; its message is sent once, not every minute)",
    _catch_up)

PRUNE_OLD_CLAIMS = Step(
    "prune_old_claims",
    "Delete week-old slot claims of the every-minute and quarter-hour jobs",
    _prune)
