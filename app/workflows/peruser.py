"""Per-user runs of the metrics and report jobs, wrapped in their execution records."""

from __future__ import annotations

from app.models import WorkflowExecution
from app.runtime import Runtime
from app.workflows.executions import run_execution
from app.workflows.metrics import collect_metrics_for_user
from app.workflows.report import weekly_report_for_user


def collect_metrics(runtime: Runtime, execution_id: int, *, claim_id: str | None = None) -> WorkflowExecution | None:
    """Collect one user's engagement figures for the execution's slot, once."""
    def body(session, execution):  # type: ignore[no-untyped-def]
        return collect_metrics_for_user(runtime, execution.user_id, runtime.now())

    return run_execution(runtime.session_factory, execution_id, claim_id=claim_id, clock=runtime.now, body=body)


def weekly_report(runtime: Runtime, execution_id: int, *, claim_id: str | None = None) -> WorkflowExecution | None:
    """Write one user's weekly report for the week ending at the execution's slot, once."""
    def body(session, execution):  # type: ignore[no-untyped-def]
        entry = weekly_report_for_user(runtime, execution.user_id, execution.slot)
        return {"report": entry.key, "recommendations": len(entry.content.get("recommendations", []))}

    return run_execution(runtime.session_factory, execution_id, claim_id=claim_id, clock=runtime.now, body=body)
