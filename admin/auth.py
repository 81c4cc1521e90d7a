"""Operator login for the admin panel.

Operators are rows of :class:`app.models.Operator` holding a salted password hash (werkzeug's
default, scrypt). The logged-in operator's id lives in Flask's signed session cookie; every
admin view mixes in :class:`OperatorRequired`, so nothing but the login page answers without it.
Every form here, login and logout included, carries a CSRF token (Flask-Admin's SecureForm).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    Flask,
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
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired

from admin.ext import db_session
from app.errors import FieldError, ValidationError
from app.models import Operator

#: Shortest password accepted for an operator; the panel can cancel and reschedule posts.
MIN_PASSWORD_LENGTH = 10
#: The session key holding the logged-in operator's id.
SESSION_KEY = "operator_id"

bp = Blueprint("auth", __name__)

# Checked against when the username is unknown, so a wrong username costs the same time as
# a wrong password and the login form does not reveal which operators exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def create_operator(session: Session, username: str, password: str) -> Operator:
    """Add an operator with a hashed password; refuse a taken name or a short password."""
    name = (username or "").strip()
    if not name:
        raise ValidationError([FieldError("username", username, "must not be empty")])
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            [FieldError("password", "***", f"at least {MIN_PASSWORD_LENGTH} characters")]
        )
    if session.scalar(select(Operator.id).where(Operator.username == name)) is not None:
        raise ValidationError([FieldError("username", name, "an operator with this name exists")])
    operator = Operator(username=name, password_hash=generate_password_hash(password))
    session.add(operator)
    session.flush()
    return operator


def authenticate(session: Session, username: str, password: str) -> Operator | None:
    """The operator whose name and password match, else None (same cost either way)."""
    operator = session.scalar(select(Operator).where(Operator.username == username.strip()))
    if operator is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return operator if check_password_hash(operator.password_hash, password) else None


def current_actor() -> str:
    """The audit actor of the logged-in operator, e.g. ``operator:alice``."""
    return f"operator:{g.operator.username}"


class OperatorRequired:
    """Mixin for Flask-Admin views: only a logged-in operator sees them; others go to login."""

    def is_accessible(self) -> bool:
        return g.get("operator") is not None

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        return redirect(url_for("auth.login", next=request.full_path))


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


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    form = LoginForm(request.form)
    if request.method == "POST":
        if not form.validate():
            for errors in form.errors.values():
                for error in errors:
                    flash(str(error), "error")
        else:
            operator = authenticate(db_session(), form.username.data or "", form.password.data or "")
            if operator is None:
                flash("Wrong username or password.", "error")
            else:
                target = _safe_next(request.args.get("next"))
                # A fresh session on login: a cookie planted before login is worth nothing after.
                session.clear()
                session[SESSION_KEY] = operator.id
                return redirect(target)
    return render_template("autopilot/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    form = LogoutForm(request.form)
    if form.validate():
        session.clear()
        flash("Logged out.", "info")
    else:
        flash("Logout refused: the form was stale, try again.", "error")
    return redirect(url_for("auth.login"))


@bp.route("/")
def root() -> Response:
    return redirect(url_for("admin.index"))


def _load_operator() -> None:
    operator_id = session.get(SESSION_KEY)
    g.operator = db_session().get(Operator, operator_id) if operator_id is not None else None


@click.command("create-operator")
@click.argument("username")
@click.password_option()
@with_appcontext
def create_operator_command(username: str, password: str) -> None:
    """Create an admin panel operator (the first one has no other way in)."""
    from admin.ext import database

    with database().session_factory() as session, session.begin():
        try:
            create_operator(session, username, password)
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"operator {username.strip()} created")


def init_app(app: Flask) -> None:
    """Register the login routes, the per-request operator lookup and the CLI command."""
    app.register_blueprint(bp)
    app.before_request(_load_operator)
    app.context_processor(lambda: {"logout_form": LogoutForm})
    app.cli.add_command(create_operator_command)
