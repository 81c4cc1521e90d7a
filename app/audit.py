"""Audit rows: every autonomous or operator action leaves one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.models import AuditLog


def record(
    session: Session,
    action: str,
    *,
    user_id: int | None = None,
    post_id: int | None = None,
    actor: str = "autopilot",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the session's transaction (committed with the action it records)."""
    row = AuditLog(action=action, user_id=user_id, post_id=post_id, actor=actor, details=details or {})
    session.add(row)
    return row


def record_many(session: Session, rows: Sequence[AuditEntry]) -> None:
    """Insert many audit rows in one statement (a dispatch or a batch of publishes).

    ``record`` adds ORM objects one by one; for hundreds of posts a single executemany INSERT
    costs one round trip instead of hundreds of flushed objects.
    """
    if rows:
        session.execute(insert(AuditLog), [
            {"action": row.action, "user_id": row.user_id, "post_id": row.post_id, "actor": row.actor,
             "details": row.details} for row in rows])


@dataclass(frozen=True)
class AuditEntry:
    """One audit row to insert with :func:`record_many`."""

    action: str
    user_id: int | None = None
    post_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    actor: str = "autopilot"
