"""Fan-out and per-user execution records, shared by generation, metrics and reports.

A periodic job creates one ``pending`` WorkflowExecution per user for its slot (unique per
workflow, user and slot) and one message per execution. The per-user message claims its
execution ``pending -> running`` with a conditional update, so a duplicate message does
nothing. A crash leaves the row ``running``: the same message redelivered may resume it
(``claimed_by_message``), and the sweep re-sends executions whose lease ran out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.error_tracking import tag_work
from app.errors import RetryLater
from app.intents import Intent, RunUserStep
from app.jobs.spec import Step, Tick
from app.models import ExecutionStatus, WorkflowExecution
from app.providers.errors import RateLimited, TemporaryError

logger = logging.getLogger(__name__)

Plan = TypeVar("Plan")
Result = TypeVar("Result")

#: How long a running execution may go without finishing before another worker may take it.
DEFAULT_EXECUTION_LEASE = timedelta(minutes=15)
#: How long a pending execution may wait for its message before it counts as lost.
DEFAULT_PENDING_GRACE = timedelta(minutes=10)

#: Which users a fan-out covers: (session, slot's now) -> user ids, in one query.
UserSelection = Callable[[Session, datetime], Iterable[int]]


def fan_out(session: Session, workflow: str, slot: datetime, user_ids: Iterable[int], *, now: datetime) -> list[int]:
    """Create missing pending executions for ``user_ids``; return every unfinished one of the slot.

    Two queries whatever the number of users; existing rows (a resumed fan-out) are kept.
    """
    wanted = set(user_ids)
    existing = dict(session.execute(
        select(WorkflowExecution.user_id, WorkflowExecution.status)
        .where(WorkflowExecution.workflow == workflow, WorkflowExecution.slot == slot)
    ).all())
    missing = [uid for uid in sorted(wanted) if uid not in existing]
    if missing:
        try:
            with session.begin_nested():
                session.add_all(WorkflowExecution(workflow=workflow, user_id=uid, slot=slot, created_at=now,
                                                  status=ExecutionStatus.PENDING) for uid in missing)
                session.flush()
        except IntegrityError:
            # Another fan-out of the same slot raced us; its rows are as good as ours.
            logger.info("fan-out of %s %s raced another; keeping its rows", workflow, slot)
    return list(session.scalars(
        select(WorkflowExecution.id)
        .where(WorkflowExecution.workflow == workflow, WorkflowExecution.slot == slot,
               WorkflowExecution.status.in_([ExecutionStatus.PENDING, ExecutionStatus.RUNNING]))
        .order_by(WorkflowExecution.id)
    ))


def fan_out_step(description: str, users: UserSelection) -> Step:
    """The step of a per-user job: one pending execution and one intent per selected user."""

    def run(tick: Tick) -> Sequence[Intent]:
        with tick.runtime.session_factory() as session, session.begin():
            ids = fan_out(session, tick.job.name, tick.slot, users(session, tick.now), now=tick.now)
        return [RunUserStep(tick.job.name, execution_id) for execution_id in ids]

    return Step("fan_out", description, run)


def _requeue_stale(tick: Tick) -> Sequence[Intent]:
    grace = {"pending_grace": timedelta(0)} if tick.messages_lost else {}
    with tick.runtime.session_factory() as session:
        stale = stale_executions(session, tick.now, **grace)
    return [RunUserStep(workflow, execution_id) for execution_id, workflow in stale
            if workflow in tick.jobs and tick.jobs[workflow].per_user is not None]


#: The sweep's step for per-user runs whose message was lost or whose worker died.
REQUEUE_STALE_EXECUTIONS = Step(
    "requeue_stale_executions",
    "Re-send per-user runs whose message was lost (pending 10 minutes) or whose worker died "
    "(running past its 15-minute lease)",
    _requeue_stale)


def claim_execution(session: Session, execution_id: int, *, message_id: str | None, now: datetime,
                    lease: timedelta = DEFAULT_EXECUTION_LEASE) -> WorkflowExecution | None:
    """``pending -> running`` for this message; also a redelivery of the claiming message, or a lapsed lease.

    Returns the claimed row as the claim left it (read back with ``RETURNING``, so the run
    needs no second query for it), or None when it was not ours to claim.
    """
    reclaimable = [WorkflowExecution.status == ExecutionStatus.PENDING,
                   and_(WorkflowExecution.status == ExecutionStatus.RUNNING,
                        WorkflowExecution.started_at < now - lease)]
    if message_id is not None:
        reclaimable.append(and_(WorkflowExecution.status == ExecutionStatus.RUNNING,
                                WorkflowExecution.claimed_by_message == message_id))
    return session.scalars(
        update(WorkflowExecution)
        .where(WorkflowExecution.id == execution_id, or_(*reclaimable))
        .values(status=ExecutionStatus.RUNNING, started_at=now, claimed_by_message=message_id,
                attempts=WorkflowExecution.attempts + 1)
        .returning(WorkflowExecution)
        .execution_options(synchronize_session=False)
    ).one_or_none()


def stale_executions(session: Session, now: datetime, *, lease: timedelta = DEFAULT_EXECUTION_LEASE,
                     pending_grace: timedelta = DEFAULT_PENDING_GRACE) -> list[tuple[int, str]]:
    """Executions whose message was lost (pending too long) or whose worker died (lease over)."""
    rows = session.execute(
        select(WorkflowExecution.id, WorkflowExecution.workflow).where(or_(
            and_(WorkflowExecution.status == ExecutionStatus.PENDING,
                 WorkflowExecution.created_at < now - pending_grace),
            and_(WorkflowExecution.status == ExecutionStatus.RUNNING,
                 WorkflowExecution.started_at < now - lease),
        ))
    ).all()
    return [(row[0], row[1]) for row in rows]


def run_execution(session_factory: Callable[[], Session], execution_id: int, *, message_id: str | None,
                  clock: Callable[[], datetime],
                  body: Callable[[Session, WorkflowExecution], dict[str, Any]]) -> WorkflowExecution | None:
    """Claim the execution, run ``body`` in its own transaction, record the outcome.

    Returns None when the execution was not ours to run (duplicate message). A temporary
    provider failure puts the execution back to pending and raises :class:`RetryLater`;
    any other error marks it failed with the error, and does not raise (it is recorded).
    """
    claimed = _claim(session_factory, execution_id, message_id=message_id, clock=clock)
    if claimed is None:
        return None
    started = clock()

    def run() -> WorkflowExecution:
        with session_factory() as session, session.begin():
            # The row as the claim left it, not read again: nobody else runs an execution we hold.
            session.add(claimed)
            counts = body(session, claimed)
            _finish(claimed, clock(), started, ExecutionStatus.SUCCEEDED, counts=counts)
        return claimed

    return _recorded(session_factory, execution_id, clock, started, run)


@dataclass(frozen=True)
class Phases(Generic[Plan, Result]):
    """A per-user run in three steps, so that no transaction is open while a provider works.

    ``prepare`` reads what the run needs into plain values in one short transaction; ``work``
    calls the providers with no session open (a write a provider step needs, such as a
    generated image's library row, goes in its own short transaction); ``record`` stores the
    results in the same short transaction that marks the execution succeeded, so a run's
    results and its success are committed together or not at all.
    """

    prepare: Callable[[Session, WorkflowExecution], Plan]
    work: Callable[[Plan], Result]
    record: Callable[[Session, WorkflowExecution, Result], dict[str, Any]]


def run_execution_in_phases(session_factory: Callable[[], Session], execution_id: int, *,
                            message_id: str | None, clock: Callable[[], datetime],
                            phases: Phases[Plan, Result]) -> WorkflowExecution | None:
    """:func:`run_execution` for a run that calls providers: no transaction spans ``phases.work``.

    The outcome is recorded exactly as :func:`run_execution` does: None for a duplicate
    message, succeeded with the counts ``record`` returns, pending and :class:`RetryLater` on
    a temporary provider failure in any phase, failed with the error otherwise.
    """
    claimed = _claim(session_factory, execution_id, message_id=message_id, clock=clock)
    if claimed is None:
        return None
    started = clock()

    def body() -> WorkflowExecution:
        with session_factory() as session, session.begin():
            plan = phases.prepare(session, claimed)
        result = phases.work(plan)
        with session_factory() as session, session.begin():
            session.add(claimed)
            counts = phases.record(session, claimed, result)
            _finish(claimed, clock(), started, ExecutionStatus.SUCCEEDED, counts=counts)
        return claimed

    return _recorded(session_factory, execution_id, clock, started, body)


def _claim(session_factory: Callable[[], Session], execution_id: int, *, message_id: str | None,
           clock: Callable[[], datetime]) -> WorkflowExecution | None:
    with session_factory() as session, session.begin():
        claimed = claim_execution(session, execution_id, message_id=message_id, now=clock())
        if claimed is None:
            return None
        tag_work(user_id=claimed.user_id, execution_id=claimed.id,
                 slot=claimed.slot.isoformat() if claimed.slot else None)
    return claimed


def _recorded(session_factory: Callable[[], Session], execution_id: int, clock: Callable[[], datetime],
              started: datetime, body: Callable[[], WorkflowExecution]) -> WorkflowExecution:
    """Run ``body``; a temporary provider failure puts the execution back to pending and raises
    :class:`RetryLater`, any other error marks it failed with the error (recorded, not raised)."""
    try:
        return body()
    except (TemporaryError, RateLimited) as exc:
        with session_factory() as session, session.begin():
            execution = session.get(WorkflowExecution, execution_id)
            assert execution is not None
            execution.status = ExecutionStatus.PENDING
            execution.error = f"temporary: {exc}"
        raise RetryLater(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - recorded on the execution, reported by the caller
        logger.exception("execution %s failed", execution_id)
        with session_factory() as session, session.begin():
            execution = session.get(WorkflowExecution, execution_id)
            assert execution is not None
            _finish(execution, clock(), started, ExecutionStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return execution


def _finish(execution: WorkflowExecution, now: datetime, started: datetime, status: ExecutionStatus, *,
            counts: dict[str, Any] | None = None, error: str | None = None) -> None:
    execution.status = status
    execution.finished_at = now
    execution.duration_ms = int((now - started).total_seconds() * 1000)
    if counts is not None:
        execution.counts = counts
    execution.error = error
