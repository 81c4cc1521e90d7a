"""The user's data: download all of it, or delete the account (:mod:`app.userdata` does both).

Both are POSTs behind the CSRF token, both audited. Deletion asks for the account's email typed
out; once done, every session of the user is gone with their rows and this browser is signed out.
Platform tokens are revoked at each platform as the accounts page's Disconnect revokes them
(:func:`app.connect.revocation.revoke_account`, through the same runtime) and deleted with the
account; the audit row says, per account, whether the platform revoked.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
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

from app.clock import utcnow
from app.userdata import ConfirmationMismatch, delete_account, export_user_data
from portal.accounts import runtime
from portal.auth import current_actor, login_required
from portal.ext import db_session

bp = Blueprint("data", __name__, url_prefix="/data")

NAV = ("Your data", "data.index")

@bp.route("/")
@login_required
def index() -> str:
    return render_template("portal/data.html", error=None)


@bp.route("/download", methods=["POST"])
@login_required
def download() -> Response:
    now = utcnow()
    blob = export_user_data(db_session(), g.user.id, now=now, actor=current_actor())
    db_session().commit()
    response = current_app.response_class(blob, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="autopilot-data-{now:%Y-%m-%d}.zip"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/delete", methods=["POST"])
@login_required
def delete() -> Any:
    typed = request.form.get("confirm", "")
    try:
        delete_account(runtime(), g.user.id, typed, actor=current_actor())
    except ConfirmationMismatch as exc:
        return render_template("portal/data.html", error=exc.errors[0].reason, typed=typed), 400
    session.clear()
    flash("Your account and your data are deleted. Thank you for using Content Autopilot.", "info")
    return redirect(url_for("auth.signin"))
