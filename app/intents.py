"""What a workflow asks the actor layer to do: publish a post, run a user's step, run a slot.

Workflows never import Dramatiq and never name an actor: they return these intents, and only
``actors/`` turns them into messages (actor names and argument lists live there alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Intent", "PublishPost", "RunSlot", "RunUserStep"]


@dataclass(frozen=True)
class PublishPost:
    """Publish the post held by ``claim_token`` at ``due_at`` (never earlier)."""

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
