"""What a workflow asks the actor layer to do: publish a post, run a user's step, run a slot.

Workflows never import Dramatiq and never name an actor: they return these intents, and only
``actors/`` turns them into messages (actor names and argument lists live there alone).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["Intent", "MessageProbe", "PublishPost", "RunSlot", "RunUserStep"]


@dataclass(frozen=True)
class PublishPost:
    """Publish the post held by ``claim_token`` at ``due_at`` (never earlier).

    Its message carries the claim token as its message id, so recovery can ask the broker
    whether the message holding a post still exists (:class:`MessageProbe`).
    """

    post_id: int
    claim_token: str
    due_at: datetime


@dataclass(frozen=True)
class RunUserStep:
    """Run the per-user step of ``job`` for one execution (a fanned-out user)."""

    job: str
    execution_id: int


@dataclass(frozen=True)
class RunSlot:
    """Run ``job`` for ``slot`` (a missed slot caught up); its claim keeps it once."""

    job: str
    slot: datetime
    trigger: str = "catch_up"


Intent = PublishPost | RunUserStep | RunSlot


class MessageProbe(Protocol):
    """Which messages still exist and will be worked: the broker's answer to recovery.

    Given message ids (a :class:`PublishPost` message's id is its claim token), return the
    ones that are waiting in a queue, or held by a worker that is alive. A message held by a
    worker whose heartbeat stopped, or gone from the broker altogether (its data lost), is not
    alive. Built by the actor layer (``actors.liveness``): workflows never import Dramatiq.
    """

    def alive(self, message_ids: Collection[str]) -> set[str]:
        ...
