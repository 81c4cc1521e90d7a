"""The review queue: posts in ``needs_review``, and what an operator can do with them.

Every action calls :mod:`app.posts` (approve, cancel) with ``actor=operator:<name>``; those
functions make the status change a conditional UPDATE and write the audit row, so an operator
racing a worker is safe and every decision is on record. Each post is its own transaction: one
refusal does not undo the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, timedelta
from typing import Any

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.form import SecureForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import DateTimeLocalField, SelectField, TextAreaField
from wtforms.validators import InputRequired, Optional

from admin.auth import current_actor
from admin.base import SecuredModelView, format_utc, post_time, truncate, user_link
from app import posts
from app.audit import record
from app.clock import utcnow
from app.errors import NotFound, ValidationError
from app.media.library import attach_image
from app.models import MediaItem, Post, PostStatus
from app.text_limits import normalize_newlines

#: How far ahead "approve now" schedules a post (approve() refuses a time not in the future).
APPROVE_NOW_DELAY = timedelta(seconds=1)


class RescheduleForm(SecureForm):
    """Edit & reschedule: a new text and optionally a new time, given in UTC."""

    text = TextAreaField("Text", validators=[InputRequired()], render_kw={"rows": 8})
    at = DateTimeLocalField(
        "New time (UTC)",
        validators=[Optional()],
        description="Leave empty to keep the original time if still ahead, else publish now.",
    )
    image = SelectField(
        # Ownership is checked when the image is attached (another user's image is refused).
        "Image", choices=[("", "No image")], validate_choice=False,
        description="An image from the user's own library (alt text shown), or none.",
    )


class ReviewQueueView(SecuredModelView):
    """``/admin/review/``: approve, approve now, edit & reschedule (and change the image), or
    cancel reviewed posts."""

    can_create = False
    can_delete = False
    can_edit = True  # the edit form is "Edit & reschedule"
    form = RescheduleForm
    column_list = ("id", "user", "platform", "scheduled_at", "review_reason", "last_error", "text")
    column_sortable_list = ("id", "scheduled_at", "platform", "review_reason")
    column_default_sort = ("scheduled_at", False)
    column_filters = ("platform", "review_reason", "user.email")
    column_labels = {"user.email": "User email", "scheduled_at": "Scheduled", "review_reason": "Reason",
                     "last_error": "Last error"}
    column_formatters = {"text": truncate(90), "last_error": truncate(70), "user": user_link,
                         "scheduled_at": post_time}

    edit_template = "autopilot/edit.html"

    def edit_heading(self, post: Post) -> str:
        return (f"Reviewing post {post.id} of {post.user.email} on {post.platform}, "
                f"scheduled for {format_utc(post.scheduled_at)}")

    def get_query(self) -> Any:
        return super().get_query().filter(Post.status == PostStatus.NEEDS_REVIEW)

    def get_count_query(self) -> Any:
        return super().get_count_query().filter(Post.status == PostStatus.NEEDS_REVIEW)

    def get_one(self, id: Any) -> Post | None:
        post = super().get_one(id)
        return post if post is not None and post.status == PostStatus.NEEDS_REVIEW else None

    def edit_form(self, obj: Post | None = None) -> Any:
        """The form, its image choices being the post's owner's library (never another's)."""
        form = super().edit_form(obj)
        if obj is not None:
            images = self.session.scalars(select(MediaItem).where(MediaItem.user_id == obj.user_id)
                                          .order_by(MediaItem.created_at.desc(), MediaItem.id.desc())
                                          .limit(200)).all()
            form.image.choices = [("", "No image")] + [
                (str(i.id), f"{i.id}: {i.alt_text[:80]}{' (generated)' if i.generated else ''}") for i in images]
            if request.method != "POST":
                form.image.data = str(obj.media_id or "")
        return form

    def update_model(self, form: RescheduleForm, model: Post) -> bool:
        at = form.at.data.replace(tzinfo=UTC) if form.at.data else None
        # Browsers send a textarea's line breaks as \r\n: compare (and store) with \n only, so
        # changing only the time of a multi-line post is not an edit.
        submitted = normalize_newlines(form.text.data or "").strip()
        text = submitted if submitted != model.text.strip() else None
        chosen = request.form.get("image")  # absent (an older form): the image stays as it is
        try:
            image = model.media_id if chosen is None else (int(chosen) if chosen else None)
        except ValueError:
            flash(f"Post {model.id} not rescheduled: image: not an image id ({chosen!r})", "error")
            return False

        def change(session: Session, post_id: int) -> Post:
            post = session.get(Post, post_id)
            if post is not None and post.media_id != image:
                attach_image(session, post, image)
                record(session, "post.image_changed", user_id=post.user_id, post_id=post.id,
                       actor=current_actor(), details={"media_id": image})
            return posts.approve(session, post_id, now=utcnow(), at=at, text=text, actor=current_actor())

        done = self._apply([model.id], "rescheduled", change)
        if done:
            g.review_saved_post = model.id
        return bool(done)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self) -> Any:
        """Flask-Admin's edit view, except that "Save and Continue Editing" cannot reopen a post
        that the save took out of the queue: it goes to the post's page in Posts instead."""
        response = super().edit_view()
        saved = g.get("review_saved_post")
        if saved is not None and "_continue_editing" in request.form:
            flash(f"Post {saved} left the review queue; its details are below.", "info")
            return redirect(url_for("posts.details_view", id=saved))
        return response

    @action("approve", "Approve", "Approve the selected posts? Each keeps its time if still ahead, else goes out now.")
    def action_approve(self, ids: Iterable[str]) -> None:
        self._apply(ids, "approved", lambda s, pid: posts.approve(s, pid, now=utcnow(), actor=current_actor()))

    @action("approve_now", "Approve, publish now", "Publish the selected posts now?")
    def action_approve_now(self, ids: Iterable[str]) -> None:
        def now(session: Session, post_id: int) -> Post:
            instant = utcnow()
            return posts.approve(session, post_id, now=instant, at=instant + APPROVE_NOW_DELAY,
                                 actor=current_actor())

        self._apply(ids, "approved to publish now", now)

    @action("cancel", "Cancel", "Cancel the selected posts? They will not be published.")
    def action_cancel(self, ids: Iterable[str]) -> None:
        self._apply(ids, "cancelled", lambda s, pid: posts.cancel(s, pid, actor=current_actor()))

    def _apply(self, ids: Iterable[str], verb: str, change: Callable[[Session, int], Post]) -> list[int]:
        """Run ``change`` on each post in its own transaction; flash what happened to each."""
        session = self.session
        done: list[int] = []
        for raw in ids:
            try:
                post_id = int(raw)
                change(session, post_id)
                session.commit()
            except (ValueError, ValidationError, NotFound) as exc:
                session.rollback()
                flash(f"Post {raw} not {verb}: {exc}", "error")
            else:
                done.append(post_id)
        if done:
            flash(f"Post {', '.join(map(str, done))} {verb}.", "success")
        return done
