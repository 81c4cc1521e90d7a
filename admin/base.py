"""Base classes of every admin model view: login required, CSRF on every form, shared formatting.

Shared here so every list and details page behaves alike: ids that are not ids are a 404,
times read as UTC without microseconds, long texts are cut in lists (whole in details), CSV
exports cannot smuggle spreadsheet formulas, and an expired form says so and keeps its input.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, flash, request, url_for
from flask_admin.form import SecureForm
from flask_admin.helpers import is_form_submitted
from flask_admin.model import typefmt
from markupsafe import Markup
from sqlalchemy.orm import Session, scoped_session

from admin._compat import ModelView
from admin.auth import FORM_EXPIRED_MESSAGE, OperatorRequired, csrf_expired
from app.models import Post

#: Rows per list page.
DEFAULT_PAGE_SIZE = 50
#: Largest id a PostgreSQL ``integer`` primary key holds; a bigger one cannot name a row.
MAX_ID = 2**31 - 1
#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_ID = re.compile(r"^[0-9]{1,10}$")


def valid_id(raw: Any) -> bool:
    """Whether ``raw`` (a query-string value) can be a primary key of ours."""
    return isinstance(raw, str) and bool(_ID.match(raw)) and 0 < int(raw) <= MAX_ID


def format_utc(value: datetime | None) -> str:
    """``2026-11-26 06:00:05 UTC``: seconds matter for posts, microseconds never do."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def local_time(value: datetime | None, timezone: str | None) -> Markup:
    """A UTC time with the user's local wall-clock time beside it (on its own small line)."""
    if value is None:
        return Markup("")
    utc = format_utc(value)
    if not timezone or timezone == "UTC":
        return Markup("{}").format(utc)
    try:
        local = value.astimezone(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return Markup("{}").format(utc)
    return Markup('<span class="utc-time">{}</span><br>'
                  '<small class="text-muted local-time" title="{}">{} {} local</small>').format(
        utc, timezone, local.strftime("%Y-%m-%d %H:%M"), local.tzname()
    )


def link(endpoint: str, id_: int | None, label: str) -> Markup | str:
    if id_ is None:
        return ""
    return Markup('<a href="{}">{}</a>').format(url_for(f"{endpoint}.details_view", id=id_), label)


def user_link(view: Any, context: Any, model: Any, name: str) -> Markup | str:
    """The user a row is about, by email, linked to their page."""
    user = getattr(model, "user", None)
    return link("users", getattr(model, "user_id", None), user.email if user is not None else f"user {model.user_id}")


def _user_timezone(post: Post) -> str | None:
    return post.user.settings.timezone if post.user is not None and post.user.settings is not None else None


def post_time(view: Any, context: Any, post: Post, name: str) -> Markup:
    """A post's time in UTC, with the user's local time beside it."""
    return local_time(getattr(post, name), _user_timezone(post))


def _datetime_formatter(view: Any, value: datetime, name: str) -> str:
    return format_utc(value)


#: Flask-Admin's type formatters with our datetime format, for lists and details.
def _enum_formatter(view: Any, value: Enum, name: str) -> Any:
    """A status as stored and as the CLI prints it ("needs_review"), not the member's name."""
    return value.value


TYPE_FORMATTERS = {**typefmt.BASE_FORMATTERS, datetime: _datetime_formatter, Enum: _enum_formatter}
DETAIL_TYPE_FORMATTERS = {**typefmt.DETAIL_FORMATTERS, datetime: _datetime_formatter, Enum: _enum_formatter}


def neutralise_formula(value: Any) -> Any:
    """Prefix a cell a spreadsheet would evaluate (``=SUM(...)``, ``+1``, ``@cmd``) with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SecuredModelView(OperatorRequired, ModelView):
    """A ModelView only operators reach, whose forms (edit, delete, actions) carry a CSRF token."""

    form_base_class = SecureForm
    page_size = DEFAULT_PAGE_SIZE
    column_display_pk = True
    can_view_details = True
    can_set_page_size = True
    column_type_formatters = TYPE_FORMATTERS
    column_type_formatters_detail = DETAIL_TYPE_FORMATTERS
    column_type_formatters_export = {**typefmt.EXPORT_FORMATTERS, datetime: _datetime_formatter,
                                     Enum: _enum_formatter}

    def __init__(self, model: type, session: scoped_session[Session], **kwargs: Any) -> None:
        # Flask-Admin 2 deprecates a plain scoped session in favour of a Flask-SQLAlchemy
        # object. We keep the session from app.db (the workers' models and engine) rather
        # than adopt Flask-SQLAlchemy for one panel; the warning says nothing actionable here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Passing a session object", DeprecationWarning)
            super().__init__(model, session, **kwargs)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        # ?id=abc (or an id no integer column holds) names no record: a 404, not a 500 from
        # the database refusing to compare an integer with "abc".
        if name in ("details_view", "edit_view") and "id" in request.args and not valid_id(request.args["id"]):
            abort(404)
        return None

    def get_one(self, id: Any) -> Any:
        if not valid_id(str(id)):
            return None
        return super().get_one(id)

    def validate_form(self, form: Any) -> bool:
        valid = super().validate_form(form)
        if not valid and is_form_submitted() and csrf_expired(form):
            flash(FORM_EXPIRED_MESSAGE, "error")
        return valid

    def get_export_value(self, model: Any, name: Any) -> Any:
        return neutralise_formula(super().get_export_value(model, name))


class ReadOnlyModelView(SecuredModelView):
    """Records written by the autopilot itself: operators look, they do not rewrite history."""

    can_create = False
    can_edit = False
    can_delete = False


def json_block(value: Any) -> Markup:
    """A dict or list pretty-printed in a ``<pre>`` block (escaped)."""
    return Markup("<pre>{}</pre>").format(json.dumps(value, indent=2, sort_keys=True, default=str))


def format_json(view: Any, context: Any, model: Any, name: str) -> Markup:
    """Column formatter for JSON columns."""
    return json_block(getattr(model, name))


def short(text: str | None, limit: int) -> str:
    """The first ``limit`` characters of ``text`` on one line (the details page shows it whole)."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def truncate(limit: int) -> Any:
    """Column formatter showing the first ``limit`` characters of a long text (whole in details)."""

    def formatter(view: Any, context: Any, model: Any, name: str) -> str:
        return short(getattr(model, name), limit)

    return formatter


def compact_json(limit: int) -> Any:
    """Column formatter for a JSON column in a list: one short line (whole in details)."""

    def formatter(view: Any, context: Any, model: Any, name: str) -> str:
        value = getattr(model, name)
        if not value:
            return ""
        return short(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False), limit)

    return formatter
