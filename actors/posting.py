"""Publishing: wait for the exact second, then claim and publish once (app.workflows.publishing)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import dramatiq

from actors.messages import send_all
from app.runtime import get_runtime
from app.workflows.ticks import Outgoing


def sleep_until(due: datetime, clock) -> None:  # type: ignore[no-untyped-def]
    """Sleep until ``due`` on the runtime's clock (a fast-forwarded demo clock never sleeps)."""
    remaining = (due - clock()).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


#: Long enough for the early-arrival wait (a few seconds) plus the platform call's timeouts.
PUBLISH_TIME_LIMIT_MS = 5 * 60 * 1000


@dramatiq.actor(queue_name="posting", max_retries=0, time_limit=PUBLISH_TIME_LIMIT_MS)
def publish_post(post_id: int, claim_token: str, due_at: str | None = None) -> None:
    from app.workflows.publishing import publish_post as publish

    runtime = get_runtime()
    if due_at:
        sleep_until(datetime.fromisoformat(due_at).astimezone(UTC), runtime.now)
    outcome = publish(runtime, post_id, claim_token, runtime.now())
    if outcome.kind == "retry" and outcome.retry_at is not None and outcome.claim_token:
        send_all([Outgoing("publish_post", (post_id, outcome.claim_token, outcome.retry_at.isoformat()),
                           eta=outcome.retry_at)], runtime.now())
