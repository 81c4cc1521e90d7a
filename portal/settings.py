"""The user's own autopilot settings, through the same validation and audit as the CLI and admin.

A save goes through :func:`app.users.update_user` (the one home of "validate the merged whole,
apply what changed, audit it"), with the user as the actor. A refused save writes nothing and
shows every bad field beside its input, the input kept. Turning autonomous mode off stops
generation at once (the daily fan-out reads the flag) and asks what to do with the posts the
autopilot already scheduled: keep them, or cancel them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import func, select

from app import posts as post_service
from app import users as user_service
from app.errors import ValidationError
from app.models import Post
from app.platforms import PLATFORMS
from app.validation import MAX_BRAND_VOICE, POST_VISIBILITIES, known_time_zones, settings_of
from portal.auth import current_actor, login_required
from portal.ext import db_session

bp = Blueprint("settings", __name__, url_prefix="/settings")

NAV = ("Settings", "settings.index")

#: The reason recorded on each post cancelled because autonomous mode was turned off.
CANCEL_REASON = "autonomous mode turned off by the user"


@lru_cache(maxsize=1)
def time_zone_options() -> Markup:
    """The searchable list's ``<option>``s, every zone the validation accepts: built once per
    process (about 600 of them: rendering them on every request was half the page's time)."""
    return Markup("").join(Markup('<option value="{}">').format(zone) for zone in known_time_zones())


def _form_values(settings: dict[str, Any]) -> dict[str, Any]:
    """What the form shows for stored settings (times as ``09:00, 17:00``, topics one per line)."""
    return {
        **settings,
        "times": {key: ", ".join(settings["posting_times"].get(key, [])) for key in PLATFORMS},
        "topics_text": "\n".join(settings["topics"]),
    }


def _submitted() -> tuple[dict[str, Any], dict[str, Any]]:
    """The raw settings of the posted form (for validation) and the values to show again."""
    form = request.form
    platforms = [key for key in PLATFORMS if form.get(f"platform_{key}")]
    times = {key: form.get(f"times_{key}", "").strip() for key in PLATFORMS}
    topics_text = form.get("topics", "")
    raw: dict[str, Any] = {
        "enable_autonomous_mode": bool(form.get("enable_autonomous_mode")),
        "require_approval": bool(form.get("require_approval")),
        "timezone": form.get("timezone", "").strip(),
        "preferred_platforms": platforms,
        # A chosen platform with no time reaches the validation, which says so.
        "posting_times": {key: value for key, value in times.items() if value or key in platforms},
        "content_frequency": form.get("content_frequency", "").strip(),
        "brand_voice": form.get("brand_voice", ""),
        "creativity_level": form.get("creativity_level", "").strip(),
        "topics": [line.strip() for line in topics_text.splitlines() if line.strip()],
        "language": form.get("language", "").strip(),
        "country": form.get("country", "").strip(),
    }
    if "post_visibility" in form:  # offered only where a platform chooses audiences
        raw["post_visibility"] = form["post_visibility"].strip()
    shown = {**raw, "times": times, "topics_text": topics_text}
    return raw, shown


def _upcoming_autonomous(user_id: int) -> int:
    return db_session().scalar(
        select(func.count()).select_from(Post).where(
            Post.user_id == user_id, Post.origin == "autonomous", Post.status.in_(post_service.UPCOMING))) or 0


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    db = db_session()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        raw, shown = _submitted()
        was_on = g.user.settings.enable_autonomous_mode
        try:
            user_service.update_user(db, g.user.email, raw, actor=current_actor())
        except ValidationError as exc:
            db.rollback()
            for error in exc.errors:
                errors.setdefault(error.field, []).append(error.reason)
            flash("Not saved: fix the fields marked below.", "error")
            return _render(shown, errors), 400
        db.commit()
        if was_on and not raw["enable_autonomous_mode"] and _upcoming_autonomous(g.user.id):
            return redirect(url_for("settings.scheduled_posts"))
        flash("Settings saved.", "success")
        return redirect(url_for("settings.index"))
    return _render(_form_values(settings_of(g.user.settings)), errors)


def _render(values: dict[str, Any], errors: dict[str, list[str]]) -> str:
    return render_template("portal/settings.html", values=values, errors=errors, platforms=PLATFORMS,
                           time_zone_options=time_zone_options(), max_brand_voice=MAX_BRAND_VOICE,
                           visibilities=VISIBILITY_LABELS, visibility_platforms=_visibility_platforms())


#: What each ``post_visibility`` choice means, in the user's words (the validation's choices).
VISIBILITY_LABELS = {
    "public": "Public",
    "unlisted": "Unlisted (kept out of public timelines)",
    "private": "Followers only",
}
assert set(VISIBILITY_LABELS) == set(POST_VISIBILITIES)


def _visibility_platforms() -> str:
    """The names of the platforms where a post chooses its audience (the registry says which)."""
    return " and ".join(p.display_name for p in PLATFORMS.values() if p.chooses_visibility)


@bp.route("/scheduled-posts", methods=["GET", "POST"])
@login_required
def scheduled_posts() -> Any:
    """After autonomous mode was turned off: keep or cancel the posts it already scheduled."""
    db = db_session()
    if request.method == "POST":
        if request.form.get("choice") == "cancel":
            cancelled = post_service.cancel_upcoming(db, g.user.id, reason=CANCEL_REASON, actor=current_actor(),
                                                     origin="autonomous")
            db.commit()
            flash(f"Autonomous mode is off; {len(cancelled)} scheduled "
                  f"{'post was' if len(cancelled) == 1 else 'posts were'} cancelled.", "success")
        else:
            flash("Autonomous mode is off; the posts already scheduled will still go out.", "success")
        return redirect(url_for("settings.index"))
    return render_template("portal/scheduled_posts.html", count=_upcoming_autonomous(g.user.id),
                           autonomous=g.user.settings.enable_autonomous_mode)
