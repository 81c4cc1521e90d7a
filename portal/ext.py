"""The portal's handle on its settings and database, kept on ``app.extensions["portal"]``.

Each app built by :func:`portal.create_app` gets its own engine and scoped session (tests
build several apps in one process); the scoped session gives each request one session,
removed when the app context ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from app.config import Settings

#: The key under which the extension lives in ``app.extensions``.
EXTENSION_KEY = "portal"


@dataclass(frozen=True)
class PortalContext:
    """Settings, engine, session factory and the per-request scoped session of one portal app."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    db: scoped_session[Session]


def portal() -> PortalContext:
    """The current app's context (raises outside an app context)."""
    return current_app.extensions[EXTENSION_KEY]


def db_session() -> scoped_session[Session]:
    """The current request's database session."""
    return portal().db


def settings() -> Settings:
    """The settings the current portal app was built with."""
    return portal().settings
