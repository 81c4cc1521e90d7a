"""Admin panel operators: create, list, change a password, disable. Every change is audited.

The CLI (``autopilot operators ...``) and the admin's login both use these functions, so the
password rule, the hashing and the audit rows live in one place. Passwords are stored as
werkzeug's salted hash (scrypt); a password never reaches a log, an audit row or an error.
"""

from __future__ import annotations

import functools

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.audit import record
from app.errors import FieldError, NotFound, ValidationError
from app.models import Operator

#: Shortest password accepted for an operator, in characters; the panel can cancel and
#: reschedule posts.
MIN_PASSWORD_LENGTH = 10
#: Longest operator name, in characters (the column's size).
MAX_USERNAME_LENGTH = 100

@functools.cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so a wrong username costs the same time as
    a wrong password and the login form does not reveal which operators exist. Made on first
    use, not at import: scrypt is deliberately slow, and every CLI command imports this module."""
    return generate_password_hash("not-a-real-password")


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError([FieldError("password", "***", f"at least {MIN_PASSWORD_LENGTH} characters")])


def get_operator(session: Session, username: str) -> Operator:
    operator = session.scalar(select(Operator).where(Operator.username == (username or "").strip()))
    if operator is None:
        raise NotFound(f"no operator named {username!r}")
    return operator


def create_operator(session: Session, username: str, password: str, *, actor: str = "cli") -> Operator:
    """Add an operator with a hashed password; refuse a taken name or a short password."""
    name = (username or "").strip()
    if not name:
        raise ValidationError([FieldError("username", username, "must not be empty")])
    if len(name) > MAX_USERNAME_LENGTH:
        raise ValidationError([FieldError("username", name[:20] + "...", f"at most {MAX_USERNAME_LENGTH} characters")])
    _check_password(password)
    if session.scalar(select(Operator.id).where(Operator.username == name)) is not None:
        raise ValidationError([FieldError("username", name, "an operator with this name exists")])
    operator = Operator(username=name, password_hash=generate_password_hash(password))
    session.add(operator)
    session.flush()
    record(session, "operator.created", actor=actor, details={"operator": name})
    return operator


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.username)))


def set_password(session: Session, username: str, password: str, *, actor: str = "cli") -> Operator:
    """Change a password; every session of the operator ends (their cookies are refused)."""
    _check_password(password)
    operator = get_operator(session, username)
    operator.password_hash = generate_password_hash(password)
    operator.session_generation += 1
    record(session, "operator.password_changed", actor=actor, details={"operator": operator.username})
    return operator


def disable_operator(session: Session, username: str, *, actor: str = "cli") -> Operator:
    """Disable an operator: no more logins, and their open sessions end at the next request."""
    operator = get_operator(session, username)
    if not operator.disabled:
        operator.disabled = True
        operator.session_generation += 1
        record(session, "operator.disabled", actor=actor, details={"operator": operator.username})
    return operator


def revoke_sessions(session: Session, operator_id: int) -> None:
    """End every session of an operator (logout): cookies of older generations are refused."""
    operator = session.get(Operator, operator_id)
    if operator is not None:
        operator.session_generation += 1


def authenticate(session: Session, username: str, password: str) -> Operator | None:
    """The enabled operator whose name and password match, else None (same cost either way)."""
    operator = session.scalar(select(Operator).where(Operator.username == (username or "").strip()))
    if operator is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(operator.password_hash, password) or operator.disabled:
        return None
    return operator
