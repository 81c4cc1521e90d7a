"""Cutting a sequence into bounded pieces: one helper for every "at most N per statement/call".

Rows per UPDATE (:data:`app.lifecycle.ROWS_PER_UPDATE`), posts per metrics call, ids per X
lookup: each is a *chunk*, and each is cut here. "Batch" means one thing only: the posts one
publish message carries (:mod:`app.batches`). Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from app.errors import InvalidValue

__all__ = ["chunks"]

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in order, ``size`` at a time (the last piece may be shorter)."""
    if size < 1:
        raise InvalidValue(f"a chunk holds at least one item, not {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]
