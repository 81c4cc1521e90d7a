"""The operators' Flask-Admin panel, built by :func:`create_app` (no app at import time).

Run it with ``flask --app admin.wsgi run`` (or any WSGI server on ``admin.wsgi:app``);
create the first operator with ``autopilot operators create NAME``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy.orm import scoped_session
from werkzeug.middleware.proxy_fix import ProxyFix

from admin import auth, operations
from admin.ext import EXTENSION_KEY, AdminDatabase
from admin.views import init_admin
from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory
from app.websecurity import init_app as init_security_headers

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the admin app.

    ``SECRET_KEY``, ``DATABASE_URL``, ``SESSION_COOKIE_SECURE`` and
    ``PERMANENT_SESSION_LIFETIME`` come from ``test_config`` when given there, else from
    :class:`app.config.Settings` (the environment), the same source the workers read.
    """
    app = Flask(__name__)
    app.config.from_mapping(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="autopilot_admin",
    )
    config = dict(test_config or {})
    # A test config naming both needs no environment; otherwise the environment decides.
    settings = Settings() if {"SECRET_KEY", "DATABASE_URL"} <= config.keys() else get_settings()
    config.setdefault("SECRET_KEY", settings.secret_key)
    config.setdefault("DATABASE_URL", settings.database_url)
    secure = settings.session_cookie_secure
    # HTTPS-only cookies everywhere but development on http://localhost (flask run --debug).
    config.setdefault("SESSION_COOKIE_SECURE", (not app.debug) if secure is None else secure)
    config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=settings.admin_session_hours))
    app.config.from_mapping(config)
    if settings.admin_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.admin_proxy_count,  # type: ignore[method-assign]
                                x_proto=settings.admin_proxy_count)
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
    init_security_headers(app)
    panel = init_admin(app, db)
    operations.init_app(app, panel, factory)
    return app
