"""What a workflow asks the actor layer to do: publish a post, run a user's step, run a slot.

Workflows never import Dramatiq and never name an actor: they return these intents, and only
``actors/`` turns them into messages (actor names and argument lists live there alone).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["Intent", "MessageProbe", "PublishPosts", "RunSlot", "RunUserStep", "UploadMedia"]


@dataclass(frozen=True)
class PublishPosts:
    """Publish the posts held by ``claim_token``, all due at ``due_at`` (never earlier).

    Posts due at the same second travel together (up to ``PUBLISH_BATCH_SIZE`` per message,
    :mod:`app.batches`), so one worker thread waiting for a second holds a batch, not a post.
    Its message carries the claim token as its message id, so recovery can ask the broker
    whether the message holding a post still exists (:class:`MessageProbe`).
    """

    claim_token: str
    due_at: datetime
    post_ids: tuple[int, ...]


@dataclass(frozen=True)
class UploadMedia:
    """Upload the images of these just-queued posts now, ahead of their second, so the
    publish only names the platform's media id (:mod:`app.workflows.media_uploads`)."""

    post_ids: tuple[int, ...]


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


Intent = PublishPosts | UploadMedia | RunUserStep | RunSlot


class MessageProbe(Protocol):
    """Which messages still exist and will be worked: the broker's answer to recovery.

    Given message ids (a :class:`PublishPosts` message's id is its claim token), return the
    ones that are waiting in a queue, or held by a worker that is alive. A message held by a
    worker whose heartbeat stopped, or gone from the broker altogether (its data lost), is not
    alive. Built by the actor layer (``actors.liveness``): workflows never import Dramatiq.
    """

    def alive(self, message_ids: Collection[str]) -> set[str]:
        ...
