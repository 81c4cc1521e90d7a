"""The Procfile's ``web`` process: the portal at ``/`` and the admin under ``/admin``, one WSGI app.

A Heroku-style platform routes outside traffic only to the ``web`` process, so both apps are
served by it, composed with Werkzeug's ``DispatcherMiddleware``: a request under ``/admin``
goes to the admin with ``SCRIPT_NAME=/admin`` (so its ``url_for``, redirects and static files
carry the prefix), everything else to the portal. Mounted, the admin's Flask-Admin views sit at
its own root (``ADMIN_VIEWS_URL=""``): the dashboard is ``/admin/``, the users ``/admin/users/``,
the probes ``/admin/healthz`` and ``/admin/metrics``. Each keeps its own session cookie: the
admin's (``autopilot_admin``) is scoped to ``/admin``, the portal's (``autopilot_portal``) to
``/``, and each is signed under its own salt, so neither app can read the other's sessions.
Operators who want them apart run ``gunicorn portal.wsgi:app`` and ``gunicorn admin.wsgi:app``.

Run it with ``gunicorn portal.web_wsgi:app`` (the Procfile does).
"""

from __future__ import annotations

from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware

import admin
import portal
from admin.auth import VIEWS_URL_KEY
from app.config import Settings

#: Where the admin is mounted in the composed app.
ADMIN_PREFIX = "/admin"


def create_web_app(settings: Settings | None = None, *, portal_config: dict[str, Any] | None = None,
                   admin_config: dict[str, Any] | None = None) -> DispatcherMiddleware:
    """The portal (on ``settings``, default the environment's) with the admin under :data:`ADMIN_PREFIX`.

    The admin reads the environment as when run alone, unless ``admin_config`` names its
    ``SECRET_KEY`` and ``DATABASE_URL`` (tests); its cookie is scoped to its prefix either way
    (Flask scopes a cookie to ``APPLICATION_ROOT``, not to the ``SCRIPT_NAME`` it is mounted at).
    """
    portal_app = portal.create_app(settings, portal_config)
    # The admin's views at its own root: /admin/users/, not /admin/admin/users/.
    admin_app = admin.create_app({"SESSION_COOKIE_PATH": ADMIN_PREFIX, VIEWS_URL_KEY: "",
                                  **(admin_config or {})})
    return DispatcherMiddleware(portal_app, {ADMIN_PREFIX: admin_app})
