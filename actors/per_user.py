"""Per-user fan-out targets: one message per user and slot, each idempotent."""

from __future__ import annotations

import dramatiq

from actors.messages import current_message_id
from app.runtime import get_runtime
from app.workflows import generation, peruser


@dramatiq.actor(queue_name="autonomous", max_retries=5, min_backoff=30_000)
def generate_for_user(execution_id: int) -> None:
    generation.generate_for_user(get_runtime(), execution_id, claim_id=current_message_id())


@dramatiq.actor(queue_name="metrics", max_retries=5, min_backoff=30_000)
def collect_metrics_for_user(execution_id: int) -> None:
    peruser.collect_metrics(get_runtime(), execution_id, claim_id=current_message_id())


@dramatiq.actor(queue_name="reports", max_retries=5, min_backoff=30_000)
def weekly_report_for_user(execution_id: int) -> None:
    peruser.weekly_report(get_runtime(), execution_id, claim_id=current_message_id())
