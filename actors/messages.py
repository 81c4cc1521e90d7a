"""Sending what a workflow asked for, and reading the current message's identity."""

from __future__ import annotations

from datetime import datetime

import dramatiq
from dramatiq.middleware import CurrentMessage

from app.workflows.ticks import Outgoing

#: Publish messages are sent this many ms before their second: Dramatiq's delayed messages
#: arrive up to ~1.5 s late, so they land early and the actor waits for the exact instant.
PUBLISH_LEAD_MS = 5_000


def current_message_id() -> str | None:
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else None


def current_scheduled_at() -> str | None:
    """The fire time Periodiq stamped on a periodic message, if any."""
    message = CurrentMessage.get_current_message()
    return message.options.get("scheduled_at") if message is not None else None


def send_all(messages: list[Outgoing], now: datetime) -> int:
    broker = dramatiq.get_broker()
    for out in messages:
        actor = broker.get_actor(out.actor)
        delay = None
        if out.eta is not None:
            lead = PUBLISH_LEAD_MS if out.actor == "publish_post" else 0
            delay = max(0, int((out.eta - now).total_seconds() * 1000) - lead) or None
        actor.send_with_options(args=out.args, delay=delay)
    return len(messages)
