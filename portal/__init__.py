"""The users' portal: the people whose names go on the posts sign in here (not the admin).

Built by :func:`create_app` (no app at import time), flaskr-style: one blueprint per area,
templates extending ``portal/base.html``, ``g.user`` loaded once per request
(:mod:`portal.auth`), every query scoped to that user (:mod:`portal.scoping`). Run it alone with
``gunicorn portal.wsgi:app``; the Procfile's ``web`` line serves it at ``/`` with the admin
under ``/admin`` (:mod:`portal.web`).

To add an area: write ``portal/<area>.py`` with a Blueprint ``bp`` (and ``NAV = (label,
endpoint)`` to appear in the navigation), templates under ``portal/templates/portal/``, and
add the module to :data:`BLUEPRINTS`. Decorate every view with :func:`portal.auth.login_required`
unless it is public on purpose (the URL-map test lists the public ones), and fetch rows by id
with :func:`portal.scoping.owned_or_404`.
"""

from __future__ import annotations

import importlib
import logging
from datetime import timedelta
from typing import Any

from flask import Flask, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import scoped_session
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from app.charts import assets_blueprint
from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory
from app.websecurity import csp_nonce
from app.websecurity import init_app as init_security_headers
from portal.ext import EXTENSION_KEY, PortalContext

log = logging.getLogger(__name__)

#: The portal's areas, in navigation order: each module has a Blueprint ``bp`` and may have
#: ``NAV = (label, endpoint)``.
BLUEPRINTS: tuple[str, ...] = (
    "portal.home",
    "portal.auth",
    "portal.posts",
    "portal.media",
    "portal.reports",
    "portal.notifications",
    "portal.accounts",
    "portal.settings",
    "portal.data",
    "portal.dashboard",
)

#: The portal's session cookie: its own name (the admin's is ``autopilot_admin``) and path.
SESSION_COOKIE_NAME = "autopilot_portal"


class PortalSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, signed under the portal's own salt: an admin cookie (same
    ``SECRET_KEY``) pasted as a portal cookie does not even deserialise, nor the reverse."""

    salt = "autopilot.portal.session"


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """Build the portal on ``settings`` (default: the environment's), with Flask config overrides."""
    settings = settings or get_settings()
    app = Flask(__name__)
    secure = settings.session_cookie_secure
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: the platforms' OAuth consent screens send the user back by a
        # top-level GET, which must carry the cookie the flow's state is bound to.
        SESSION_COOKIE_SAMESITE="Lax",
        # HTTPS-only cookies everywhere but development on http://localhost (flask run --debug).
        SESSION_COOKIE_SECURE=(not app.debug) if secure is None else secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.portal_session_hours),
        # A form open for a day still submits: the token is tied to the session, which is what
        # stops another site; its age protects nothing more here.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.from_mapping(test_config or {})
    app.session_interface = PortalSessionInterface()
    if settings.admin_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.admin_proxy_count,  # type: ignore[method-assign]
                                x_proto=settings.admin_proxy_count)
    if settings.secret_key == Settings().secret_key and not app.testing:
        log.warning("SECRET_KEY is the public development default: set SECRET_KEY before exposing the portal")

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    db = scoped_session(factory)
    app.extensions[EXTENSION_KEY] = PortalContext(settings=settings, engine=engine, session_factory=factory, db=db)

    @app.teardown_appcontext
    def _remove_session(exc: BaseException | None) -> None:
        db.remove()

    CSRFProtect(app)

    @app.errorhandler(CSRFError)
    def _csrf_refused(exc: CSRFError) -> tuple[str, int]:
        return render_template("portal/error.html", title="Form expired",
                               message="This form was stale or did not come from this site: "
                                       "go back, reload the page and submit again."), 400

    @app.errorhandler(404)
    def _not_found(exc: Any) -> tuple[str, int]:
        return render_template("portal/error.html", title="Not found",
                               message="There is nothing here, or it is not yours."), 404

    init_security_headers(app, inline_styles=False)
    app.register_blueprint(assets_blueprint())

    @app.after_request
    def _no_store(response: Response) -> Response:
        # Pages hold a user's data or a one-time link: no shared or back-button cache keeps them.
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    nav: list[tuple[str, str]] = []
    for name in BLUEPRINTS:
        module = importlib.import_module(name)
        app.register_blueprint(module.bp)
        if hasattr(module, "NAV"):
            nav.append(module.NAV)
        if hasattr(module, "init_app"):
            module.init_app(app)
    app.config["PORTAL_NAV"] = tuple(nav)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    return app
