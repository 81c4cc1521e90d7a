"""The admin's handle on the database, kept on ``app.extensions["autopilot"]``.

Each app built by :func:`admin.create_app` gets its own engine and its own scoped session,
so two apps in one process (tests do this) never share a connection or an identity map.
The scoped session gives each request one session, removed when the app context ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

#: The key under which the extension lives in ``app.extensions``.
EXTENSION_KEY = "autopilot"


@dataclass(frozen=True)
class AdminDatabase:
    """Engine, session factory and the per-request scoped session of one admin app."""

    engine: Engine
    session_factory: sessionmaker[Session]
    db: scoped_session[Session]


def database() -> AdminDatabase:
    """The current app's database handle (raises outside an app context)."""
    return current_app.extensions[EXTENSION_KEY]


def db_session() -> scoped_session[Session]:
    """The current request's session."""
    return database().db
