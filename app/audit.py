"""Audit rows: every autonomous or operator action leaves one."""

from __future__ import annotations

from typing import Any

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
