"""Every portal query is the signed-in user's: fetch by id through here, list through here.

A row of another user answers exactly as a row that does not exist (404), so an id in a URL,
a query string or a form can neither read nor change someone else's data, nor tell that it
exists. The URL-map test (tests/portal/test_scoping.py) tries every route with another
user's ids.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import abort, g
from sqlalchemy import Select, select

from portal.ext import db_session

M = TypeVar("M")


def user_query(model: type[M]) -> Select[tuple[M]]:
    """``SELECT model WHERE model.user_id = <signed-in user>``: add filters and order to it."""
    return select(model).where(model.user_id == g.user.id)  # type: ignore[attr-defined]


def user_rows(model: Any, *columns: Any) -> Select[Any]:
    """``SELECT columns FROM model WHERE model.user_id = <signed-in user>``: plain rows, for lists
    (hydrating ORM objects cost a list page more than its queries)."""
    return select(*columns).where(model.user_id == g.user.id)


def owned_or_404(model: type[M], row_id: Any) -> M:
    """The signed-in user's row of ``model`` with this id; 404 if absent or someone else's."""
    try:
        key = int(row_id)
    except (TypeError, ValueError):
        abort(404)
    row = db_session().scalar(user_query(model).where(model.id == key))  # type: ignore[attr-defined]
    if row is None:
        abort(404)
    return row
