"""Base classes of every admin model view: login required, CSRF on every form, shared formatting."""

from __future__ import annotations

import json
import warnings
from typing import Any

from flask_admin.form import SecureForm
from markupsafe import Markup
from sqlalchemy.orm import Session, scoped_session

from admin._compat import ModelView
from admin.auth import OperatorRequired

#: Rows per list page.
DEFAULT_PAGE_SIZE = 50


class SecuredModelView(OperatorRequired, ModelView):
    """A ModelView only operators reach, whose forms (edit, delete, actions) carry a CSRF token."""

    form_base_class = SecureForm
    page_size = DEFAULT_PAGE_SIZE
    column_display_pk = True
    can_view_details = True
    can_set_page_size = True

    def __init__(self, model: type, session: scoped_session[Session], **kwargs: Any) -> None:
        # Flask-Admin 2 deprecates a plain scoped session in favour of a Flask-SQLAlchemy
        # object. We keep the session from app.db (the workers' models and engine) rather
        # than adopt Flask-SQLAlchemy for one panel; the warning says nothing actionable here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Passing a session object", DeprecationWarning)
            super().__init__(model, session, **kwargs)


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


def truncate(limit: int) -> Any:
    """Column formatter showing the first ``limit`` characters of a long text."""

    def formatter(view: Any, context: Any, model: Any, name: str) -> str:
        text = getattr(model, name) or ""
        return text if len(text) <= limit else text[: limit - 1] + "…"

    return formatter
