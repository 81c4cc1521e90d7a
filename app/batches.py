"""Which posts travel together: the posts due at one second, a bounded number per message.

Real users pick round posting times, so thousands of posts can share one second. One message
per post made every post hold a worker thread through the early-arrival wait and pay for its
own transactions; one message per second and batch holds one thread for up to
:data:`PUBLISH_BATCH_SIZE` posts, claims them in one UPDATE and records them in one
transaction, while their platform calls run concurrently (:mod:`app.workflows.publish`).
The bound keeps a burst spread over several messages, so several worker processes share it.

All the posts of a batch carry the same claim token, which is the message's id: recovery's
"is the message holding this post still alive?" needs no change (ARCHITECTURE decision 4).
Pure functions: no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from itertools import groupby

from app.chunks import chunks
from app.errors import InvalidValue
from app.intents import PublishPosts

__all__ = ["PUBLISH_BATCH_SIZE", "keep_moved", "plan_batches", "tokens_by_post"]

#: The most posts one publish message carries. 2,000 posts at one second make 40 messages,
#: enough for every posting process to take a share; each batch's calls run concurrently.
PUBLISH_BATCH_SIZE = 50


def plan_batches(posts: Iterable[tuple[int, datetime]], size: int = PUBLISH_BATCH_SIZE) -> list[PublishPosts]:
    """Group ``(post id, due at)`` pairs by due instant, ``size`` posts at most per batch, each
    batch under a new claim token; ordered by due instant, then post id."""
    if size < 1:
        raise InvalidValue(f"a batch holds at least one post, not {size}")
    batches: list[PublishPosts] = []
    for due, group in groupby(sorted(posts, key=lambda p: (p[1], p[0])), key=lambda p: p[1]):
        for ids in chunks([post_id for post_id, _ in group], size):
            batches.append(PublishPosts(uuid.uuid4().hex, due, tuple(ids)))
    return batches


def tokens_by_post(batches: Iterable[PublishPosts]) -> dict[int, str]:
    """Each post's claim token: what a claiming UPDATE sets (``case(tokens, value=Post.id)``)."""
    return {post_id: batch.claim_token for batch in batches for post_id in batch.post_ids}


def keep_moved(batches: Iterable[PublishPosts], moved: Collection[int]) -> list[PublishPosts]:
    """The batches as far as their posts were actually claimed (a concurrent claimer may have
    taken some); batches left empty are dropped."""
    kept = []
    for batch in batches:
        ids = tuple(post_id for post_id in batch.post_ids if post_id in moved)
        if ids:
            kept.append(PublishPosts(batch.claim_token, batch.due_at, ids))
    return kept
