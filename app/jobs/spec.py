"""How a periodic job is declared: its cron, queue and description, and the steps it runs.

Each workflow module declares its own job beside the work it does (as warehouse registers a
domain's periodic tasks next to them); :mod:`app.workflows.jobs` gathers them into the one
catalogue, and everything that lists, runs or catches up a job reads that catalogue.

A job runs once per slot (see :mod:`app.jobs.claims`): its steps run in order and return
intents (:mod:`app.intents`) for the actor layer to send. A job that fans out has a per-user
step, run once per user by its own message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from periodiq import CronSpec, cron

from app.intents import Intent, MessageProbe
from app.jobs import fires

if TYPE_CHECKING:
    from app.config import Settings
    from app.runtime import Runtime

__all__ = ["DEFAULT_LOOKBACK", "PerUserRun", "PeriodicJob", "Step", "Tick"]

#: How far back :meth:`PeriodicJob.latest_fire` looks for a fire (more than a weekly period).
DEFAULT_LOOKBACK = timedelta(days=8)


@dataclass(frozen=True)
class Tick:
    """One slot of one job being run: what each of its steps is given."""

    runtime: Runtime
    job: PeriodicJob
    slot: datetime
    now: datetime
    #: The whole catalogue: catching up reads the other jobs' windows.
    jobs: Mapping[str, PeriodicJob]
    #: At start-up on the in-process broker every in-flight message died with the last process,
    #: so recovery steps treat anything in flight as lost at once instead of after their grace.
    messages_lost: bool = False
    #: The broker's view of which messages are alive (None: no broker to ask, e.g. a test).
    messages: MessageProbe | None = None
    #: When an interrupted attempt at this same slot claimed it (a redelivered tick): what
    #: that attempt claimed and did not hand to the broker is re-sent without waiting.
    resumed_from: datetime | None = None


#: A step's work: database work in its own short sessions, returning what to send.
StepRun = Callable[[Tick], Sequence[Intent]]
#: A per-user step: (runtime, execution id, id of the message running it).
PerUserRun = Callable[["Runtime", int, "str | None"], object]


@dataclass(frozen=True)
class Step:
    """A named piece of a job's periodic work, listed by ``autopilot schedule``."""

    name: str
    description: str
    run: StepRun


@dataclass(frozen=True)
class PeriodicJob:
    """One cron-driven job: when it fires (UTC), on which queue, and the work it does."""

    name: str
    cron: str
    queue: str
    description: str
    steps: tuple[Step, ...]
    #: The Settings field (hours) bounding how late a missed slot is still run; None: never.
    catch_up_setting: str | None = None
    #: That window for this deployment, set by :meth:`for_settings` (the catalogue does it).
    catch_up: timedelta | None = None
    #: The per-user step run once for each execution a fan-out step creates; a job with one fans
    #: out. The actor running it is named in ``actors/messages.py`` (actor names live there).
    per_user: PerUserRun | None = None
    #: Finished claims older than this are deleted (frequent jobs); None: kept for the record.
    claim_retention: timedelta | None = None

    def for_settings(self, settings: Settings) -> PeriodicJob:
        """This job with its catch-up window read from ``settings``."""
        if self.catch_up_setting is None:
            return self
        return replace(self, catch_up=timedelta(hours=getattr(settings, self.catch_up_setting)))

    @cached_property
    def spec(self) -> CronSpec:
        """The cron as Periodiq parses it, parsed once per job."""
        return cron(self.cron)

    def next_fire(self, after: datetime) -> datetime:
        """The first fire strictly after ``after`` (to the minute), in UTC."""
        return fires.next_fire(self.spec, after)

    def next_fires(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fires strictly after ``after``."""
        return fires.next_fires(self.spec, after, count)

    def fire_times(self, start: datetime, end: datetime) -> list[datetime]:
        """Every fire in [start, end)."""
        return fires.fire_times(self.spec, start, end)

    def latest_fire(self, now: datetime, lookback: timedelta = DEFAULT_LOOKBACK) -> datetime | None:
        """The last fire at or before ``now`` within ``lookback``."""
        return fires.latest_fire(self.spec, now, lookback)
