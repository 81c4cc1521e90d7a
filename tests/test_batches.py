"""Which posts travel together (app/batches.py): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.batches import PUBLISH_BATCH_SIZE, keep_moved, plan_batches, tokens_by_post
from app.intents import PublishPosts

NINE = datetime(2028, 2, 29, 14, 0, tzinfo=UTC)  # 09:00 in New York on a leap day


def test_posts_due_at_one_second_share_a_batch_and_a_token() -> None:
    posts = [(3, NINE), (1, NINE), (2, NINE + timedelta(seconds=1)), (4, NINE)]
    batches = plan_batches(posts)
    assert [(b.due_at, b.post_ids) for b in batches] == [(NINE, (1, 3, 4)), (NINE + timedelta(seconds=1), (2,))]
    assert len({b.claim_token for b in batches}) == 2
    assert tokens_by_post(batches) == {1: batches[0].claim_token, 3: batches[0].claim_token,
                                       4: batches[0].claim_token, 2: batches[1].claim_token}


def test_a_crowded_second_is_split_into_bounded_batches() -> None:
    count = 2 * PUBLISH_BATCH_SIZE + 7
    batches = plan_batches((n, NINE) for n in range(count))
    assert [len(b.post_ids) for b in batches] == [PUBLISH_BATCH_SIZE, PUBLISH_BATCH_SIZE, 7]
    assert [p for b in batches for p in b.post_ids] == list(range(count))  # each once, in order
    assert len({b.claim_token for b in batches}) == 3


@pytest.mark.parametrize("size", [1, 2, 3, 50])
def test_every_post_is_in_exactly_one_batch_whatever_the_size(size: int) -> None:
    posts = [(n, NINE + timedelta(seconds=n % 4)) for n in range(23)]
    batches = plan_batches(posts, size)
    assert sorted(p for b in batches for p in b.post_ids) == list(range(23))
    assert all(1 <= len(b.post_ids) <= size for b in batches)
    assert [b.due_at for b in batches] == sorted(b.due_at for b in batches)
    for batch in batches:
        assert all(dict(posts)[p] == batch.due_at for p in batch.post_ids)


def test_no_posts_no_batches_and_a_batch_holds_at_least_one() -> None:
    assert plan_batches([]) == []
    with pytest.raises(ValueError, match="at least one post"):
        plan_batches([(1, NINE)], 0)


def test_only_the_posts_actually_claimed_are_sent() -> None:
    batches = [PublishPosts("a", NINE, (1, 2, 3)), PublishPosts("b", NINE, (4,))]
    assert keep_moved(batches, {1, 3}) == [PublishPosts("a", NINE, (1, 3))]
    assert keep_moved(batches, set()) == []
