"""List filters the admin needs beyond Flask-Admin's: UTC times, and links that open a filtered list.

Flask-Admin's datetime filters hand SQLAlchemy a naive datetime, which :class:`UTCDateTime`
refuses (a naive value could be anyone's local time); these read the typed value as UTC.
:func:`filtered_list_url` builds the URL of a list with filters applied, from the filters'
names, so the dashboard's links keep working when a view's filters are reordered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import url_for

from admin._compat import sqla_filters
from app.errors import InvalidValue

#: How a time is typed into a filter (Flask-Admin's date-time picker format), read as UTC.
FILTER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _utc(value: str) -> datetime:
    return datetime.strptime(value.strip(), FILTER_TIME_FORMAT).replace(tzinfo=UTC)


class UTCAfter(sqla_filters.DateTimeGreaterFilter):
    def clean(self, value: str) -> datetime:
        return _utc(value)


class UTCBefore(sqla_filters.DateTimeSmallerFilter):
    def clean(self, value: str) -> datetime:
        return _utc(value)


class UTCBetween(sqla_filters.DateTimeBetweenFilter):
    def clean(self, value: str) -> list[datetime]:  # type: ignore[override]
        return [_utc(part) for part in value.split(" to ")]


def utc_time_filters(column: Any, name: str) -> tuple[Any, ...]:
    """After / before / between filters on a UTC timestamp column."""
    return (UTCAfter(column, name), UTCBefore(column, name), UTCBetween(column, name))


def filter_time(value: datetime) -> str:
    """An instant as a time filter's value."""
    return value.astimezone(UTC).strftime(FILTER_TIME_FORMAT)


def filtered_list_url(view: Any, filters: list[tuple[str, str, str]]) -> str:
    """The URL of ``view``'s list with ``(filter name, operation, value)`` filters applied."""
    args: dict[str, str] = {}
    for position, (name, operation, value) in enumerate(filters):
        for arg, (_, flt) in (view._filter_args or {}).items():
            if flt.name == name and str(flt.operation()) == operation:
                args[f"flt{position}_{arg}"] = value
                break
        else:
            raise InvalidValue(f"{type(view).__name__} has no filter {name!r} {operation!r}")
    return url_for(f"{view.endpoint}.index_view", **args)
