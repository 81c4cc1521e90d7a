"""Operator login for the admin panel: throttled, revocable, time-limited sessions.

Operators are rows of :class:`app.models.Operator` holding a salted password hash (werkzeug's
default, scrypt); :mod:`app.operators` creates and changes them (``autopilot operators ...``).
The session cookie is signed by Flask and carries the operator's id, the *session generation*
it was issued under and the login time. Every request checks all three against the database:

- logout, a password change and disabling the operator bump the generation, so a copied
  cookie stops working the moment its owner logs out (revocation server-side, not just a
  cleared cookie in one browser);
- a session older than ``ADMIN_SESSION_HOURS`` is refused whatever the cookie says.

Failed logins are throttled per account and per client address (:mod:`app.throttle`) and
each failure is logged (never the password). Every form here, login and logout included,
carries a CSRF token (Flask-Admin's SecureForm).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.cli import with_appcontext
from flask_admin.form import SecureForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired

from admin.ext import db_session
from app import throttle
from app.clock import utcnow
from app.errors import ValidationError
from app.models import Operator
from app.operators import MIN_PASSWORD_LENGTH, authenticate, create_operator, revoke_sessions

log = logging.getLogger(__name__)

__all__ = ["MIN_PASSWORD_LENGTH", "OperatorRequired", "create_operator", "current_actor", "init_app"]

#: The session key holding the logged-in operator's id.
SESSION_KEY = "operator_id"
#: The session key holding the operator's session generation at login.
GENERATION_KEY = "operator_generation"
#: The session key holding the login instant (POSIX seconds).
LOGIN_AT_KEY = "login_at"
#: The app config key holding the :class:`app.throttle.ThrottleLimits` in force.
THROTTLE_CONFIG_KEY = "LOGIN_THROTTLE"

#: Shown when a form's CSRF token has outlived its time limit (wtforms' SessionCSRF: 30 min).
FORM_EXPIRED_MESSAGE = (
    "This form expired (it was open for more than 30 minutes). Your input is kept below: "
    "check it and submit again."
)

bp = Blueprint("auth", __name__)

#: The config key of where the Flask-Admin views sit in this app: ``/admin`` when the admin runs
#: alone (the app's root redirects there), ``""`` when the app is itself mounted under ``/admin``.
VIEWS_URL_KEY = "ADMIN_VIEWS_URL"


def current_actor() -> str:
    """The audit actor of the logged-in operator, e.g. ``operator:alice``."""
    return f"operator:{g.operator.username}"


def csrf_expired(form: Any) -> bool:
    """Whether ``form`` failed only because its CSRF token is too old (not forged)."""
    field = getattr(form, "csrf_token", None)
    return field is not None and any("expired" in str(e).lower() for e in field.errors)


class OperatorRequired:
    """Mixin for Flask-Admin views: only a logged-in operator sees them; others go to login."""

    def is_accessible(self) -> bool:
        return g.get("operator") is not None

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        # The script root too: mounted under /admin, the path alone would lead out of the admin.
        return redirect(url_for("auth.login", next=request.script_root + request.full_path))


class LoginForm(SecureForm):
    username = StringField("Username", validators=[InputRequired()])
    password = PasswordField("Password", validators=[InputRequired()])


class LogoutForm(SecureForm):
    """Only a CSRF token: logging out is a POST so another site cannot do it for you."""


def _safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never an open redirect)."""
    default = url_for("admin.index")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def _try_login(form: LoginForm) -> tuple[Operator | None, int]:
    """Check the credentials under the throttle; the operator, or None and the HTTP status."""
    username = (form.username.data or "").strip()
    address = request.remote_addr
    limits: throttle.ThrottleLimits = current_app.config[THROTTLE_CONFIG_KEY]
    keys = [throttle.account_key(username), throttle.address_key(address)]
    db = db_session()
    now = utcnow()
    until = throttle.locked_until(db, keys, now)
    if until is not None:
        db.rollback()
        log.warning("login refused while locked: operator=%r address=%s", username[:100], address)
        flash(f"Too many failed logins: try again after {until:%H:%M} UTC.", "error")
        return None, 429
    operator = authenticate(db, username, form.password.data or "")
    if operator is None:
        log.warning("failed login: operator=%r address=%s", username[:100], address)
        locked = throttle.register_failure(db, keys[0], limits.account_failures, limits, now)
        locked = throttle.register_failure(db, keys[1], limits.address_failures, limits, now) or locked
        db.commit()
        flash("Wrong username or password.", "error")
        if locked:
            flash(f"Too many failed logins: logins are paused for {int(limits.lockout.total_seconds() // 60)} minutes.",
                  "error")
            return None, 429
        return None, 200
    throttle.clear(db, keys[0])
    db.commit()
    return operator, 200


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    form = LoginForm(request.form)
    status = 200
    if request.method == "POST":
        if not form.validate():
            if csrf_expired(form):
                flash("The login form expired (it was open for more than 30 minutes): log in again.", "error")
            else:
                for errors in form.errors.values():
                    for error in errors:
                        flash(str(error), "error")
        else:
            operator, status = _try_login(form)
            if operator is not None:
                target = _safe_next(request.args.get("next"))
                # A fresh session on login: a cookie planted before login is worth nothing after.
                session.clear()
                session.permanent = True
                session[SESSION_KEY] = operator.id
                session[GENERATION_KEY] = operator.session_generation
                session[LOGIN_AT_KEY] = int(utcnow().timestamp())
                log.info("login: operator=%r address=%s", operator.username, request.remote_addr)
                return redirect(target)
    return render_template("autopilot/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    form = LogoutForm(request.form)
    if form.validate():
        operator = g.get("operator")
        if operator is not None:
            # Server-side: every cookie of this operator's current generation is now refused,
            # including copies of this one.
            revoke_sessions(db_session(), operator.id)
            db_session().commit()
        session.clear()
        flash("Logged out.", "info")
    else:
        flash("Logout refused: the form was stale, try again.", "error")
    return redirect(url_for("auth.login"))


def root() -> Response:
    """The app's root, when the dashboard is elsewhere (``/admin``): it leads there."""
    return redirect(url_for("admin.index"))


def _load_operator() -> None:
    """Put the session's operator on ``g``, or nobody if the session is revoked or too old."""
    g.operator = None
    operator_id = session.get(SESSION_KEY)
    if operator_id is None or (request.endpoint or "").endswith("static"):
        return  # stylesheets and scripts need no operator (and no database round trip)
    operator = db_session().get(Operator, operator_id)
    lifetime: timedelta = current_app.permanent_session_lifetime
    login_at = session.get(LOGIN_AT_KEY)
    valid = (
        operator is not None
        and not operator.disabled
        and session.get(GENERATION_KEY) == operator.session_generation
        and isinstance(login_at, int)
        and utcnow().timestamp() - login_at < lifetime.total_seconds()
    )
    if not valid:
        session.clear()
        return
    g.operator = operator


@click.command("create-operator")
@click.argument("username")
@click.password_option()
@with_appcontext
def create_operator_command(username: str, password: str) -> None:
    """Create an admin panel operator (kept for old scripts; prefer ``autopilot operators create``)."""
    from admin.ext import database

    with database().session_factory() as db, db.begin():
        try:
            create_operator(db, username, password, actor="cli")
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"operator {username.strip()} created")


def init_app(app: Flask) -> None:
    """Register the login routes, the per-request operator lookup and the CLI command."""
    app.config.setdefault(THROTTLE_CONFIG_KEY, throttle.ThrottleLimits())
    app.register_blueprint(bp)
    if app.config[VIEWS_URL_KEY]:
        # With the views at the root the dashboard is "/" itself: no redirect may shadow it.
        app.add_url_rule("/", "auth.root", root)
    app.before_request(_load_operator)
    app.context_processor(lambda: {"logout_form": LogoutForm})
    app.cli.add_command(create_operator_command)
