"""Applying a weekly report's advice with one button, and reading back what was applied.

A recommendation that changes a setting (a posting time, the frequency) is stored with the
report as a :class:`app.report_math.SettingChange`. :func:`apply_change` makes that change
through :func:`app.users.update_user`, the same validation and ``user.updated`` audit row as the
settings form, and records ``advice.applied``; the next weekly report reads those rows back
(:func:`applied_since`) and says whether the change helped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import record
from app.errors import FieldError, NotFound, ValidationError
from app.models import AuditLog, MemoryEntry, User
from app.report_math import AppliedAdvice
from app.users import update_user
from app.validation import settings_of

#: The audit action of an applied recommendation.
APPLIED = "advice.applied"
#: Settings a report may propose to change.
CHANGEABLE = ("posting_time", "content_frequency")


def report_entry(session: Session, user_id: int, key: str) -> MemoryEntry:
    """The user's weekly report stored under ``key`` (NotFound for anyone else's)."""
    entry = session.scalar(select(MemoryEntry).where(MemoryEntry.user_id == user_id, MemoryEntry.kind == "insight",
                                                     MemoryEntry.key == key))
    if entry is None:
        raise NotFound(f"no report {key!r}")
    return entry


def apply_change(session: Session, user_id: int, key: str, index: int, *, now: datetime, actor: str) -> dict[str, Any]:
    """Apply change ``index`` of the report ``key``; returns the change as stored.

    Refused (ValidationError, nothing changed) when it was applied already, or when the
    setting is no longer what the report saw (the user changed it since): applying a stale
    proposal would undo their own choice.
    """
    entry = report_entry(session, user_id, key)
    changes = list((entry.content or {}).get("changes") or [])
    if not 0 <= index < len(changes) or changes[index].get("setting") not in CHANGEABLE:
        raise NotFound(f"report {key!r} has no change {index}")
    change = dict(changes[index])
    if change.get("applied_at"):
        raise ValidationError([FieldError("change", index, "this advice was applied already")])
    user = session.get(User, user_id)
    assert user is not None and user.settings is not None
    current = settings_of(user.settings)
    platform, was, proposed = change["platform"], change["current"], change["proposed"]
    if change["setting"] == "posting_time":
        times = list(current["posting_times"].get(platform) or [])
        if was not in times:
            raise ValidationError([FieldError("posting_times", times,
                                              f"{was} is no longer one of your posting times on this platform")])
        times = sorted({proposed if t == was else t for t in times})
        update = {"posting_times": {**current["posting_times"], platform: times}}
    else:
        if current["content_frequency"] != was:
            raise ValidationError([FieldError("content_frequency", current["content_frequency"],
                                              f"your frequency is no longer {was} posts a week")])
        update = {"content_frequency": proposed}
    update_user(session, user.email, update, actor=actor)  # validates the whole, audits user.updated
    change["applied_at"] = now.isoformat()
    changes[index] = change
    entry.content = {**entry.content, "changes": changes}  # a new dict: JSON columns track assignment
    record(session, APPLIED, user_id=user_id, actor=actor,
           details={"key": key, "index": index, "setting": change["setting"], "platform": platform,
                    "current": was, "proposed": proposed})
    return change


def applied_since(session: Session, user_id: int, since: datetime, until: datetime) -> list[AppliedAdvice]:
    """The changes the user applied from reports in [since, until), oldest first."""
    rows = session.execute(
        select(AuditLog.details, AuditLog.created_at)
        .where(AuditLog.user_id == user_id, AuditLog.action == APPLIED,
               AuditLog.created_at >= since, AuditLog.created_at < until)
        .order_by(AuditLog.created_at, AuditLog.id)).all()
    return [AppliedAdvice(d["setting"], d["platform"], d["current"], d["proposed"], at) for d, at in rows]
