"""Periodic jobs: how they are declared, when they fire (UTC), and the once-per-slot claim.

The catalogue of this deployment's jobs is :func:`app.workflows.jobs.catalogue`; this package
holds the machinery every job shares and imports no workflow.
"""

from app.jobs.claims import claim_slot, finish_slot, missed_slots, prune_job_runs
from app.jobs.spec import PeriodicJob, PerUserRun, Step, Tick

__all__ = ["PerUserRun", "PeriodicJob", "Step", "Tick", "claim_slot", "finish_slot", "missed_slots",
           "prune_job_runs"]
