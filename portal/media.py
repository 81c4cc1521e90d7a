"""The user's image library: upload (alt text required, tags optional), thumbnails, change, delete.

The work is :mod:`app.media.library`'s (checked and cleaned uploads, owner-scoped lookups, safe
deletes); every image is fetched by (id, signed-in user), so another user's is a 404. Pages show
images at their public URL (``MEDIA_PUBLIC_BASE_URL``, a CDN); without one the portal serves
the local directory itself under ``/media/file/`` to the image's owner only.
"""

from __future__ import annotations

from typing import Any

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
from werkzeug.wrappers import Response

from app.errors import NotFound, ValidationError
from app.media import library
from app.media.storage import LocalStorage, MediaStorage, StorageError, storage_from_settings
from app.models import MediaItem
from portal.auth import login_required
from portal.ext import db_session, settings
from portal.scoping import owned_or_404, user_query

bp = Blueprint("media", __name__, url_prefix="/media")

NAV = ("Images", "media.index")

#: Where the app keeps its storage (tests may put their own there before the first request).
STORAGE_KEY = "portal_media_storage"


def init_app(app: Flask) -> None:
    # The largest request Flask reads: the upload limit plus room for the form's other fields.
    limit = app.extensions["portal"].settings.media_max_upload_bytes
    app.config.setdefault("MAX_CONTENT_LENGTH", limit + 64 * 1024)

    @app.errorhandler(413)
    def _too_large(exc: Any) -> tuple[str, int]:
        return render_template("portal/error.html", title="File too large",
                               message=f"Images may be at most {limit // (1024 * 1024)} MB."), 413


def storage() -> MediaStorage:
    """The app's media storage, built once from its settings."""
    store = current_app.extensions.get(STORAGE_KEY)
    if store is None:
        store = current_app.extensions[STORAGE_KEY] = storage_from_settings(settings())
    return store


def image_url(key: str) -> str:
    """Where a page shows an object: the CDN, or the portal's own route for a local directory
    without a public base URL."""
    store = storage()
    if isinstance(store, LocalStorage) and not settings().media_public_base_url:
        owner, _, name = key.partition("/")
        return url_for("media.file", user_id=int(owner[1:]), name=name)
    return store.public_url(key)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"image_url": image_url}


def _render(errors: dict[str, list[str]] | None = None, form: dict[str, str] | None = None, status: int = 200) -> Any:
    images = db_session().scalars(user_query(MediaItem).order_by(MediaItem.created_at.desc(), MediaItem.id.desc())
                                  .limit(200)).all()
    return render_template("portal/media.html", images=images, errors=errors or {}, form=form or {},
                           max_mb=settings().media_max_upload_bytes // (1024 * 1024)), status


@bp.route("/")
@login_required
def index() -> Any:
    return _render()


@bp.route("/", methods=["POST"])
@login_required
def upload() -> Any:
    """Add an image; a refused one (not an image, SVG, too big, no alt text...) stores nothing."""
    upload_file = request.files.get("file")
    alt_text, tags = request.form.get("alt_text", ""), request.form.get("tags", "")
    data = upload_file.read() if upload_file is not None else b""
    try:
        item = library.add_image(db_session(), storage(), g.user.id, data, alt_text=alt_text, tags=tags,
                                 max_bytes=settings().media_max_upload_bytes,
                                 max_pixels=settings().media_max_upload_pixels)
        db_session().commit()
    except ValidationError as exc:
        db_session().rollback()
        errors: dict[str, list[str]] = {}
        for error in exc.errors:
            errors.setdefault(error.field, []).append(error.reason)
        flash("Not uploaded: " + "; ".join(f"{e.field.replace('_', ' ')}: {e.reason}" for e in exc.errors), "error")
        return _render(errors, {"alt_text": alt_text, "tags": tags}, 400)
    flash(f"Uploaded ({item.width_px}x{item.height_px}, metadata removed).", "success")
    return redirect(url_for("media.index"))


@bp.route("/<int:media_id>/edit", methods=["POST"])
@login_required
def edit(media_id: int) -> Any:
    item = owned_or_404(MediaItem, media_id)
    try:
        library.update_image(db_session(), g.user.id, item.id, alt_text=request.form.get("alt_text", ""),
                             tags=request.form.get("tags", ""))
        db_session().commit()
    except ValidationError as exc:
        db_session().rollback()
        flash("Not saved: " + "; ".join(f"{e.field.replace('_', ' ')}: {e.reason}" for e in exc.errors), "error")
        return _render(status=400)
    flash("Saved.", "success")
    return redirect(url_for("media.index"))


@bp.route("/<int:media_id>/delete", methods=["POST"])
@login_required
def delete(media_id: int) -> Any:
    item = owned_or_404(MediaItem, media_id)
    try:
        library.delete_image(db_session(), storage(), g.user.id, item.id)
        db_session().commit()
    except library.ImageInUse as exc:
        db_session().rollback()
        flash(f"Not deleted: {exc}", "error")
        return _render(status=409)
    flash("Deleted.", "success")
    return redirect(url_for("media.index"))


@bp.route("/file/u<int:user_id>/<name>")
@login_required
def file(user_id: int, name: str) -> Response:
    """A local-directory object, to its owner only (with a CDN configured pages link there)."""
    if user_id != g.user.id:
        abort(404)
    store = storage()
    if not isinstance(store, LocalStorage):
        abort(404)
    key = f"u{user_id}/{name}"
    try:
        row = db_session().scalar(user_query(MediaItem).where(
            (MediaItem.storage_key == key) | (MediaItem.thumbnail_key == key)))
        if row is None:
            raise NotFound(key)
        data = store.get(key)
    except (NotFound, StorageError):
        abort(404)
    content_type = row.content_type if key == row.storage_key else (
        "image/png" if key.endswith(".png") else "image/jpeg")
    response = Response(data, mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
