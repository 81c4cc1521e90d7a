"""The ORM's foundations: the declarative base, an aware-UTC timestamp, enum columns, and the
column shapes every model repeats (``Annotated`` aliases, as SQLAlchemy's docs recommend).

Every timestamp is timezone-aware UTC on both PostgreSQL and SQLite (:class:`UTCDateTime`).
Statuses and review reasons are StrEnums stored as their values in plain VARCHAR columns
(:func:`enum_column`: non-native, no CHECK), which keeps the schema portable between the two
databases; Python code compares enum members, never bare strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from sqlalchemy import JSON, DateTime, Enum, ForeignKey, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.types import TypeDecorator

from app.clock import utcnow
from app.errors import InvalidValue

__all__ = ["Base", "CreatedAt", "IntPK", "NAMING_CONVENTION", "UTCDateTime", "UpdatedAt", "UserFK",
           "enum_column"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored and returned as aware UTC.

    SQLite has no time zone type and hands back naive values; PostgreSQL hands back the
    session's zone. Both come back as UTC here, and a naive value is refused on the way in
    so a local wall-clock time can never be mistaken for an instant.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise InvalidValue(f"naive datetime {value!r} refused: pass an aware UTC instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def enum_column(enum: type[StrEnum], length: int) -> Enum:
    """A StrEnum stored as its values in a plain VARCHAR: no native type, no CHECK constraint,
    so the schema stays the same on PostgreSQL and SQLite and adding a member needs no migration."""
    return Enum(enum, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda members: [m.value for m in members], validate_strings=True)


#: An integer primary key.
IntPK = Annotated[int, mapped_column(primary_key=True)]
#: When the row was created (the process clock: column defaults have no runtime).
CreatedAt = Annotated[datetime, mapped_column(default=utcnow)]
#: When the row was last changed.
UpdatedAt = Annotated[datetime, mapped_column(default=utcnow, onupdate=utcnow)]
#: The owning user; the row goes with the user.
UserFK = Annotated[int, mapped_column(ForeignKey("users.id", ondelete="CASCADE"))]
