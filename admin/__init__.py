"""The operators' Flask-Admin panel, built by :func:`create_app` (no app at import time).

Run it with ``flask --app admin.wsgi run`` (or any WSGI server on ``admin.wsgi:app``);
create the first operator with ``flask --app admin.wsgi create-operator NAME``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy.orm import scoped_session

from admin import auth, operations
from admin.ext import EXTENSION_KEY, AdminDatabase
from admin.views import init_admin
from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the admin app.

    ``SECRET_KEY`` and ``DATABASE_URL`` come from ``test_config`` when given there, else from
    :class:`app.config.Settings` (the environment), the same source the workers read.
    """
    app = Flask(__name__)
    app.config.from_mapping(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    config = dict(test_config or {})
    if "SECRET_KEY" not in config or "DATABASE_URL" not in config:
        settings = get_settings()
        config.setdefault("SECRET_KEY", settings.secret_key)
        config.setdefault("DATABASE_URL", settings.database_url)
    app.config.from_mapping(config)
    if app.config["SECRET_KEY"] == Settings().secret_key and not app.testing:
        # Anyone knowing the public default can forge a logged-in session cookie.
        log.warning("SECRET_KEY is the public development default: set SECRET_KEY before exposing the admin")

    engine = make_engine(app.config["DATABASE_URL"])
    factory = make_session_factory(engine)
    db = scoped_session(factory)
    app.extensions[EXTENSION_KEY] = AdminDatabase(engine=engine, session_factory=factory, db=db)

    @app.teardown_appcontext
    def _remove_session(exc: BaseException | None) -> None:
        db.remove()

    auth.init_app(app)
    panel = init_admin(app, db)
    operations.init_app(app, panel, factory)
    return app
