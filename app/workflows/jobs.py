"""The job catalogue: every periodic job, each declared beside its workflow, gathered here.

``autopilot schedule``, the actors, the catch-up and the tests all read this one catalogue;
a deployment's catch-up windows come from its Settings (:func:`catalogue`).
"""

from __future__ import annotations

from app.config import Settings
from app.jobs.spec import PeriodicJob
from app.workflows.dispatch import DISPATCH_DUE_POSTS
from app.workflows.generation import DAILY_GENERATION
from app.workflows.metrics import METRICS_COLLECTION
from app.workflows.report import WEEKLY_REPORT
from app.workflows.sweep import SWEEP_STUCK_POSTS

__all__ = ["JOBS", "catalogue"]

#: Every job as declared (crons, queues, steps); catch-up windows unresolved.
DECLARED: tuple[PeriodicJob, ...] = (
    DAILY_GENERATION, METRICS_COLLECTION, WEEKLY_REPORT, DISPATCH_DUE_POSTS, SWEEP_STUCK_POSTS,
)
#: The jobs by name with the default Settings' windows: for what does not depend on a deployment
#: (names, crons, queues, fire times).
JOBS: dict[str, PeriodicJob] = {job.name: job.for_settings(Settings()) for job in DECLARED}


def catalogue(settings: Settings) -> dict[str, PeriodicJob]:
    """The jobs by name, with this deployment's catch-up windows."""
    return {job.name: job.for_settings(settings) for job in DECLARED}
