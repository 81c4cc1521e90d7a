"""The Users view and its settings editor.

Settings are never written by Flask-Admin's ``populate_obj``: a save goes through
:func:`app.users.create_user` / :func:`app.users.update_user`, which validate the whole merged
settings with :func:`app.validation.validate_settings` and leave an audit row. A refused value
is flashed as ``field: reason (got value)`` and nothing is written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.form import SecureForm
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms.form import BaseForm

from admin.auth import current_actor
from admin.base import SecuredModelView
from admin.settings_form import clean_settings, form_values, settings_fields
from app import users as user_service
from app.clock import utcnow
from app.config import get_settings
from app.errors import NotFound, ValidationError
from app.models import User
from app.signin import create_link, disable_user, link_url
from app.validation import SETTING_FIELDS, CleanSettings


def _setting(name: str) -> Any:
    def formatter(view: Any, context: Any, model: User, _name: str) -> Any:
        return getattr(model.settings, name) if model.settings is not None else None

    return formatter


class UserView(SecuredModelView):
    """``/admin/users/``: search by email, create a user, edit name and settings."""

    column_list = ("id", "email", "name", "autonomous", "timezone", "platforms", "approval", "disabled",
                   "created_at")
    column_details_list = ("id", "email", "name", "disabled", "created_at", "settings")
    column_searchable_list = ("email",)
    column_sortable_list = ("id", "email", "created_at")
    column_default_sort = ("email", False)
    column_formatters = {
        "autonomous": _setting("enable_autonomous_mode"),
        "timezone": _setting("timezone"),
        "platforms": lambda v, c, m, n: ", ".join(m.settings.preferred_platforms) if m.settings else "",
        "approval": _setting("require_approval"),
    }
    column_formatters_detail = {"settings": lambda v, c, m, n: settings_table(m.settings)}
    edit_template = "autopilot/edit.html"
    # Only these and the settings fields: never the relationships (accounts hold tokens).
    # Flask-Admin includes an extra field only when form_columns names it.
    form_columns = ("email", "name", *SETTING_FIELDS)
    form_extra_fields = settings_fields()
    # Deleting a user deletes their posts, history and accounts: done from the CLI, on purpose.
    can_delete = False
    details_template = "autopilot/user_details.html"

    def render(self, template: str, **kwargs: Any) -> Any:
        # The portal actions' forms carry the admin's CSRF token like every other form here.
        return super().render(template, portal_form=PortalActionForm, **kwargs)

    def _user_or_404(self) -> User:
        user = self.get_one(request.args.get("id", "")) if str(request.args.get("id", "")).isdigit() else None
        if user is None:
            abort(404)
        return user

    @expose("/invite/", methods=("POST",))
    def invite_view(self) -> Any:
        """Make a one-time portal sign-in link (as ``autopilot users invite``) and show it once."""
        user = self._user_or_404()
        if not PortalActionForm(request.form).validate():
            flash("Not done: the form was stale, try again.", "error")
            return redirect(self.get_url(".details_view", id=user.id))
        app = self.admin.app
        # Signed with this app's SECRET_KEY: the portal's, in any deployment (both read SECRET_KEY).
        settings = replace(app.config.get("AUTOPILOT_SETTINGS") or get_settings(), secret_key=app.config["SECRET_KEY"])
        token = create_link(self.session, settings, user.email, now=utcnow(), created_by=current_actor())
        self.session.commit()
        if token is None:
            flash(f"{user.email} is disabled: enable them first.", "error")
            return redirect(self.get_url(".details_view", id=user.id))
        # Rendered on this response only, never flashed (a flash would sit in the cookie).
        return self.render(self.details_template, model=user, details_columns=self._details_columns,
                           get_value=self.get_detail_value, return_url=self.get_url(".index_view"),
                           invite_link=link_url(settings, token))

    @expose("/disable/", methods=("POST",))
    def disable_view(self) -> Response:
        """Disable a user (no sign-in, every portal session ended at once), or enable them again."""
        user = self._user_or_404()
        if not PortalActionForm(request.form).validate():
            flash("Not done: the form was stale, try again.", "error")
        else:
            enable = bool(request.form.get("enable"))
            disable_user(self.session, user.email, disabled=not enable, actor=current_actor())
            self.session.commit()
            flash(f"{user.email} {'enabled' if enable else 'disabled and signed out everywhere'}.", "success")
        return redirect(self.get_url(".details_view", id=user.id))

    def edit_heading(self, user: User) -> str:
        return f"Editing user {user.email}" + (f" ({user.name})" if user.name else "")

    def edit_form(self, obj: Any = None) -> BaseForm:
        form = super().edit_form(obj)
        # The email identifies the user everywhere (CLI, audit); it is not edited here.
        del form.email
        return form

    def create_form(self, obj: Any = None) -> BaseForm:
        form = super().create_form(obj)
        if request.method == "GET":
            _fill(form, form_values(CleanSettings()))
        return form

    def on_form_prefill(self, form: BaseForm, id: Any) -> None:
        # Only on GET: after a refused save the operator's input stays on screen to be fixed.
        user = self.get_one(id)
        if request.method == "GET" and user is not None and user.settings is not None:
            _fill(form, form_values(user.settings))

    def create_model(self, form: BaseForm) -> User | bool:
        try:
            clean = clean_settings(form)
            user = user_service.create_user(
                self.session, form.email.data or "", clean.as_dict(),
                name=(form.name.data or "").strip() or None, actor=current_actor(),
            )
            self.session.commit()
        except ValidationError as exc:
            self.session.rollback()
            _refuse(form, exc)
            return False
        return user

    def update_model(self, form: BaseForm, model: User) -> bool:
        try:
            clean = clean_settings(form)
            # update_user applies and audits only what changed; an emptied name field clears
            # the name, and a save that changes nothing writes no audit row.
            user_service.update_user(
                self.session, model.email, clean.as_dict(),
                name=(form.name.data or "").strip() or None, actor=current_actor(),
            )
            self.session.commit()
        except (ValidationError, NotFound) as exc:
            self.session.rollback()
            _refuse(form, exc)
            return False
        return True


class PortalActionForm(SecureForm):
    """Only a CSRF token: the invite and disable buttons are POSTs another site cannot make."""


#: Row labels of the settings table, in the form's order.
SETTING_LABELS = {
    "enable_autonomous_mode": "Autonomous mode",
    "require_approval": "Require approval",
    "timezone": "Time zone",
    "preferred_platforms": "Preferred platforms",
    "content_frequency": "Posts per week per platform",
    "posting_times": "Posting times (local)",
    "brand_voice": "Brand voice",
    "creativity_level": "Creativity",
    "topics": "Topics",
    "language": "Language",
    "country": "Country",
    "post_visibility": "Post visibility",
}


def settings_table(settings: Any) -> Markup | str:
    """A user's settings as a two-column table, values written as an operator types them."""
    if settings is None:
        return ""
    values = form_values(settings)
    values["enable_autonomous_mode"] = "yes" if settings.enable_autonomous_mode else "no"
    values["require_approval"] = "yes" if settings.require_approval else "no"
    values["topics"] = ", ".join(settings.topics or [])
    rows = Markup("").join(
        Markup("<tr><th>{}</th><td>{}</td></tr>").format(SETTING_LABELS[name], values[name])
        for name in SETTING_FIELDS
    )
    return Markup('<table class="table table-sm settings-table">{}</table>').format(rows)


def _fill(form: BaseForm, values: dict[str, Any]) -> None:
    for name, value in values.items():
        form[name].data = value


def _refuse(form: BaseForm, exc: ValidationError | NotFound) -> None:
    """Flash each refused field with its value, and mark it on the form."""
    if isinstance(exc, NotFound):
        flash(f"Not saved: {exc}", "error")
        return
    for error in exc.errors:
        flash(f"Not saved. {error}", "error")
        if error.field in form:
            field = form[error.field]
            field.errors = [*field.errors, error.reason]
