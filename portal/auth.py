"""Signing users in and out of the portal: emailed one-time links, server-side sessions.

- ``/signin`` asks for an email and answers the same page whether or not the email has an
  account (no enumeration), throttled per email and per client address
  (:mod:`app.throttle`, keys of the portal's own). The link is emailed from a background
  thread, so the answer takes as long whether a mail was sent or not.
- ``/signin/<token>`` shows a button; only its POST uses the link. Mail scanners that open
  every link in a message therefore cannot burn a one-time link (nor sign anyone in).
- The browser's cookie holds a random session token; :func:`load_user` finds its row once per
  request and puts the user on ``g.user`` (None when signed out, expired, ended or disabled).
- Sign-out deletes this session's row; "sign out everywhere" deletes all of the user's rows.

Links and sessions themselves are :mod:`app.signin` (the CLI and admin make links there too).
"""

from __future__ import annotations

import functools
import logging
import smtplib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

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
from werkzeug.wrappers import Response

from app import throttle
from app.clock import utcnow
from app.config import Settings
from app.errors import AutopilotError, ValidationError
from app.notifications import send_email
from app.signin import (
    LINK_LIFETIME,
    LinkRefused,
    consume_link,
    create_link,
    end_all_sessions,
    end_session,
    link_url,
    open_session,
    session_user,
)
from app.validation import validate_email
from portal.ext import db_session, settings

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

#: The portal cookie's key holding the session token (its SHA-256 is the row's key).
SESSION_TOKEN_KEY = "portal_session"
#: Link requests for one email, and from one client address, within the window before a pause.
DEFAULT_LINKS_PER_EMAIL = 5
DEFAULT_LINKS_PER_ADDRESS = 20
#: The app config key holding the :class:`app.throttle.ThrottleLimits` of link requests.
THROTTLE_CONFIG_KEY = "PORTAL_LINK_THROTTLE"
#: The app extension holding the thread that sends sign-in emails.
MAILER_KEY = "portal_mailer"
#: What the sign-in page answers to every well-formed request, account or not.
LINK_SENT_MESSAGE = (
    "If this address can sign in, a sign-in link is on its way to it. The link works once, "
    f"for {int(LINK_LIFETIME.total_seconds() // 60)} minutes."
)

F = TypeVar("F", bound=Callable[..., Any])


def login_required(view: F) -> F:
    """Only a signed-in user gets the view; anyone else goes to the sign-in page (and back)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("auth.signin", next=request.full_path if request.method == "GET" else None))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def current_actor() -> str:
    """The audit actor of the signed-in user: ``user:<id>`` (operators are ``operator:<name>``)."""
    return f"user:{g.user.id}"


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never an open redirect)."""
    default = url_for("home.index")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def load_user() -> None:
    """Put the session's user on ``g.user`` (and its row on ``g.user_session``), or None."""
    g.user = None
    g.user_session = None
    if (request.endpoint or "").endswith("static"):
        return  # a stylesheet needs no user (and no database round trip)
    token = session.get(SESSION_TOKEN_KEY)
    if token is None:
        return
    found = session_user(db_session(), token, now=utcnow())
    # End the lookup's transaction (the user stays loaded: sessions do not expire on commit), so a
    # view that goes on to call a platform (a revocation, a code exchange) holds none across it.
    db_session().commit()
    if found is None:
        session.clear()  # ended, expired or disabled: the cookie is worth nothing any more
        return
    g.user, g.user_session = found


def _send_link(app_settings: Settings, to: str, url: str) -> None:
    """Email a sign-in link (in the mailer thread); a failure is logged, never shown."""
    body = (
        "Someone (hopefully you) asked to sign in to Content Autopilot with this address.\n\n"
        f"Open this link to sign in; it works once, within {int(LINK_LIFETIME.total_seconds() // 60)} minutes:\n\n"
        f"{url}\n\nIf you did not ask for it, ignore this email: nothing happens without the link.\n"
    )
    try:
        send_email(app_settings, to, "Your sign-in link", body)
    except (AutopilotError, smtplib.SMTPException, OSError) as exc:
        log.warning("sign-in link email not sent: %s", type(exc).__name__)


def mailer() -> ThreadPoolExecutor:
    """The current app's mail thread (tests wait on it with ``mailer().submit(...).result()``)."""
    return current_app.extensions[MAILER_KEY]


def _throttled(email: str) -> Any | None:
    """Count this request against the email and the address; the lockout's end if refused."""
    limits: throttle.ThrottleLimits = current_app.config[THROTTLE_CONFIG_KEY]
    email_key, address_key = f"portal-email:{email[:150]}", f"portal-address:{(request.remote_addr or 'unknown')[:150]}"
    db = db_session()
    now = utcnow()
    until = throttle.locked_until(db, [email_key, address_key], now)
    if until is None:
        throttle.register_failure(db, email_key, limits.account_failures, limits, now)
        throttle.register_failure(db, address_key, limits.address_failures, limits, now)
    db.commit()
    return until


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    if g.user is not None:
        return redirect(url_for("home.index"))
    app_settings = settings()
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        try:
            clean = validate_email(email)
        except ValidationError:
            flash("Enter an email address such as you@example.com.", "error")
            return render_template("portal/signin.html", email=email), 400
        until = _throttled(clean)
        if until is not None:
            log.warning("sign-in link refused while throttled: address=%s", request.remote_addr)
            flash(f"Too many sign-in links asked for: try again after {until:%H:%M} UTC.", "error")
            return render_template("portal/signin.html", email=email), 429
        db = db_session()
        token = create_link(db, app_settings, clean, now=utcnow(), created_by="portal",
                            allow_new_user=app_settings.portal_open_signup)
        db.commit()
        if token is not None:
            if app_settings.smtp_host:
                mailer().submit(_send_link, app_settings, clean, link_url(app_settings, token))
            else:
                log.warning("sign-in link asked for but SMTP_HOST is unset: use `autopilot users invite`")
        flash(LINK_SENT_MESSAGE, "info")
        return redirect(url_for("auth.signin"))
    return render_template("portal/signin.html", email=email)


@bp.route("/signin/<token>", methods=["GET", "POST"])
def signin_link(token: str) -> Any:
    """GET shows a button; the POST uses the link (see the module docstring for why)."""
    if request.method == "GET":
        return render_template("portal/signin_link.html", token=token, next=request.args.get("next"))
    db = db_session()
    now = utcnow()
    try:
        user = consume_link(db, settings(), token, now=now)
    except LinkRefused as exc:
        db.rollback()
        return render_template("portal/error.html", title="Sign-in link refused", message=str(exc),
                               retry=url_for("auth.signin")), 400
    opened = open_session(db, user, now=now, lifetime=current_app.permanent_session_lifetime,
                          user_agent=request.headers.get("User-Agent"))
    db.commit()
    # A fresh cookie on sign-in: anything planted in the browser before is worth nothing after.
    session.clear()
    session.permanent = True
    session[SESSION_TOKEN_KEY] = opened.token
    log.info("portal sign-in: user=%s address=%s", user.id, request.remote_addr)
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/signout", methods=["POST"])
def signout() -> Response:
    if g.user_session is not None:
        end_session(db_session(), g.user_session.id)
        db_session().commit()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.signin"))


@bp.route("/signout/everywhere", methods=["POST"])
@login_required
def signout_everywhere() -> Response:
    ended = end_all_sessions(db_session(), g.user.id, actor=current_actor())
    db_session().commit()
    session.clear()
    flash(f"Signed out everywhere ({ended} {'browser' if ended == 1 else 'browsers'}).", "info")
    return redirect(url_for("auth.signin"))


def init_app(app: Flask) -> None:
    """The per-request user lookup, the link throttle's limits and the mail thread."""
    app.config.setdefault(THROTTLE_CONFIG_KEY, throttle.ThrottleLimits(
        account_failures=DEFAULT_LINKS_PER_EMAIL, address_failures=DEFAULT_LINKS_PER_ADDRESS))
    app.extensions[MAILER_KEY] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-mail")
    app.before_request(load_user)
    app.context_processor(lambda: {"portal_open_signup": settings().portal_open_signup})
