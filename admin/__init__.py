"""The operators' Flask-Admin panel, built by :func:`create_app` (no app at import time).

Run it with ``flask --app admin.wsgi run`` (or any WSGI server on ``admin.wsgi:app``);
create the first operator with ``autopilot operators create NAME``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from admin import auth, ext, operations
from admin.views import init_admin
from app.charts import assets_blueprint
from app.config import Settings, get_settings
from app.websecurity import init_app as init_security_headers

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the admin app.

    The settings are resolved once, here, and kept by :func:`admin.ext.init_app`: the
    ``AUTOPILOT_SETTINGS`` of ``test_config`` when given; else defaults when ``test_config``
    names both ``SECRET_KEY`` and ``DATABASE_URL`` (no environment needed); else the
    environment, the same source the workers read. ``SECRET_KEY``, ``DATABASE_URL``,
    ``REDIS_URL``, ``SESSION_COOKIE_SECURE`` and ``PERMANENT_SESSION_LIFETIME`` given in
    ``test_config`` win over those settings. ``ADMIN_VIEWS_URL`` is where the panel's views sit:
    ``/admin`` (the default, run alone) or ``""`` when the app is mounted under ``/admin``.
    """
    app = Flask(__name__)
    app.config.from_mapping(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="autopilot_admin",
        # Where the Flask-Admin views sit: "/admin" alone, "" when mounted (portal.web).
        ADMIN_VIEWS_URL="/admin",
    )
    config = dict(test_config or {})
    settings = _settings(config)
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

    extension = ext.init_app(app, settings)
    app.register_blueprint(assets_blueprint())
    auth.init_app(app)
    init_security_headers(app)
    panel = init_admin(app, extension.db)
    operations.init_app(app, panel)
    return app


def _settings(config: dict[str, Any]) -> Settings:
    """The one Settings of this app (see :func:`create_app`), with the config's URLs in it."""
    base = config.get("AUTOPILOT_SETTINGS")
    if base is None:
        # A test config naming both needs no environment; otherwise the environment decides.
        base = Settings() if {"SECRET_KEY", "DATABASE_URL"} <= config.keys() else get_settings()
    overrides = {field: config[name] for name, field in (("DATABASE_URL", "database_url"),
                                                        ("REDIS_URL", "redis_url")) if name in config}
    return replace(base, **overrides) if overrides else base
