"""The user's connected accounts: connect through the platform's consent screen, reconnect,
disconnect.

Thin on purpose: the flow (state, PKCE, code exchange, storing, revoking) is
:mod:`app.connect.flows`; this module turns requests into those calls and their results into
pages. Which platforms offer "Connect" comes from the platform registry
(:func:`app.connect.clients.connectable_platforms`), never from a list here. A consent is bound to
the browser's sign-in (the server-side session row's token digest), so an answer carried to
another browser is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from app.clock import utcnow
from app.connect import ACCOUNTS_PATH, ConnectError, callback_url, flows, open_networks
from app.connect.clients import connectable_platforms
from app.crypto import TokenVault
from app.errors import NotFound
from app.models import AccountStatus, PlatformAccount, Post
from app.platforms import PLATFORMS, display_name, get_platform
from portal.auth import current_actor, login_required
from portal.ext import db_session, settings

bp = Blueprint("accounts", __name__)

NAV = ("Accounts", "accounts.index")

#: Where this blueprint keeps the flows' runtime in ``app.extensions``.
RUNTIME_KEY = "portal_connect"


def init_app(app: Flask) -> None:
    """Give the flows the portal's settings, sessions and a token vault (one per app)."""
    context = app.extensions["portal"]
    app.extensions[RUNTIME_KEY] = flows.ConnectRuntime(
        settings=context.settings, session_factory=context.session_factory,
        vault=TokenVault.from_settings(context.settings), clock=utcnow)


def runtime() -> flows.ConnectRuntime:
    """The flows' runtime of the current app."""
    runtime: flows.ConnectRuntime = current_app.extensions[RUNTIME_KEY]
    return runtime


@dataclass(frozen=True)
class PlatformRow:
    """One line of the accounts page: a platform, the user's account there if any, what to offer."""

    key: str
    name: str
    account: PlatformAccount | None
    #: Whether the platform connects by OAuth consent, and whether this server is set up for it.
    connectable: bool
    configured: bool
    #: The form that connects it instead (the registry's ``connect_with``), or None.
    form: str | None
    #: The user's posts on the platform that a disconnect would cancel.
    upcoming: int


def _session_key() -> str:
    """What binds a consent to this browser: its sign-in's server-side session."""
    return str(g.user_session.token_hash)


@bp.route(ACCOUNTS_PATH)
@login_required
def index() -> str:
    db = db_session()
    accounts = {a.platform: a for a in db.scalars(
        select(PlatformAccount).where(PlatformAccount.user_id == g.user.id))}
    upcoming = dict(db.execute(
        select(Post.platform, func.count()).where(Post.user_id == g.user.id,
                                                 Post.status.in_(flows.FUTURE_STATUSES))
        .group_by(Post.platform)).all())
    connectable, forms = connectable_platforms(), open_networks.forms()
    rows = []
    for key in PLATFORMS:
        if key not in connectable and key not in forms and key not in accounts:
            continue
        if key in connectable:
            configured = flows.connector_for_optional(runtime(), key) is not None
        else:
            configured = key in forms and _switched_on(key)
        rows.append(PlatformRow(key, display_name(key), accounts.get(key), key in connectable, configured,
                                forms.get(key), upcoming.get(key, 0)))
    return render_template("portal/accounts.html", title="Accounts", rows=rows, AccountStatus=AccountStatus,
                           now=utcnow(), APP_PASSWORD=open_networks.APP_PASSWORD, INSTANCE=open_networks.INSTANCE)


def _switched_on(platform: str) -> bool:
    """Whether the operator switched the platform's real publisher on (its registry settings)."""
    return all(getattr(settings(), name) for name in get_platform(platform).switch_settings)


def _failed(platform: str, exc: ConnectError) -> tuple[str, int]:
    return render_template("portal/connect_failed.html", title=f"{display_name(platform)} not connected",
                           message=exc.message, platform=platform), 400


def _connected(platform: str, connected: flows.Connected) -> Response:
    verb = "reconnected" if connected.reconnected else "connected"
    flash(f"Your {display_name(platform)} account {connected.handle} is {verb}.", "success")
    return redirect(url_for("accounts.index"))


@bp.route("/connect/<platform>/app-password", methods=["POST"])
@login_required
def connect_app_password(platform: str) -> Any:
    """The handle and app password form: signed in on the platform at once; the password is
    used for that call only, never stored nor rendered back."""
    if open_networks.forms().get(platform) != open_networks.APP_PASSWORD:
        abort(404)
    try:
        connected = open_networks.connect_app_password(
            runtime(), user_id=g.user.id, platform=platform, handle=request.form.get("handle", ""),
            app_password=request.form.get("app_password", ""), actor=current_actor())
    except ConnectError as exc:
        return _failed(platform, exc)
    return _connected(platform, connected)


@bp.route("/connect/<platform>/instance", methods=["POST"])
@login_required
def connect_instance(platform: str) -> Any:
    """The server's domain: registered there if needed, then a link to that server's consent page.

    A page with a link, not a redirect: the portal's CSP (``form-action 'self'``) rightly stops a
    form's answer from redirecting to another origin, and the user sees which server they go to.
    """
    if open_networks.forms().get(platform) != open_networks.INSTANCE:
        abort(404)
    try:
        consent = open_networks.start_instance(
            runtime(), user_id=g.user.id, platform=platform, domain=request.form.get("domain", ""),
            session_key=_session_key(), redirect_uri=callback_url(settings(), platform))
    except ConnectError as exc:
        return _failed(platform, exc)
    server = urlsplit(consent).netloc
    return render_template("portal/connect_continue.html", title=f"Connect {display_name(platform)}",
                           consent=consent, server=server)


@bp.route("/connect/<platform>")
@login_required
def connect(platform: str) -> Response:
    if platform not in connectable_platforms():
        abort(404)
    try:
        consent = flows.start(runtime(), user_id=g.user.id, platform=platform, session_key=_session_key(),
                              redirect_uri=callback_url(settings(), platform))
    except ConnectError as exc:
        flash(exc.message, "error")
        return redirect(url_for("accounts.index"))
    return redirect(consent)


@bp.route("/connect/<platform>/callback")
@login_required
def callback(platform: str) -> Any:
    instance = open_networks.forms().get(platform) == open_networks.INSTANCE
    if platform not in connectable_platforms() and not instance:
        abort(404)
    finish = open_networks.finish_instance if instance else flows.finish
    try:
        connected = finish(runtime(), user_id=g.user.id, platform=platform, session_key=_session_key(),
                           params=request.args.to_dict(), actor=current_actor())
    except ConnectError as exc:
        return _failed(platform, exc)
    return _connected(platform, connected)


@bp.route("/accounts/<int:account_id>/disconnect", methods=["POST"])
@login_required
def disconnect(account_id: int) -> Response:
    try:
        result = flows.disconnect(runtime(), user_id=g.user.id, account_id=account_id, actor=current_actor())
    except NotFound:
        abort(404)
    name = display_name(result.platform)
    parts = [f"Your {name} account {result.handle or ''} is disconnected and its tokens are deleted."]
    if result.revoked is False:
        parts.append(f"{name} did not confirm the revocation: you can also remove the app in your {name} settings.")
    if result.cancelled_posts:
        parts.append(f"{result.cancelled_posts} upcoming post(s) on {name} were cancelled.")
    flash(" ".join(parts), "success")
    return redirect(url_for("accounts.index"))
