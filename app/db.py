"""Engine and session factory. No session lives on a global: callers open short ones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Insert, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app.errors import InvalidValue

#: Connections kept open per process; workers run a handful of threads each.
DEFAULT_POOL_SIZE = 5
#: Extra connections allowed under a burst (fan-out, dispatch) before callers wait.
DEFAULT_MAX_OVERFLOW = 10
#: Session settings of every PostgreSQL connection (libpq ``options``). JIT compilation pays
#: 20-500 ms per query once a plan's estimated cost passes ``jit_above_cost``; our queries are
#: short index scans that never repay it, and one misestimate would add that to the minute's
#: dispatch. Sent at connection start-up: no extra round trip. (PgBouncer needs
#: ``ignore_startup_parameters = options`` to accept it.)
DEFAULT_PG_OPTIONS = "-c jit=off"


def normalise_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2 (SQLAlchemy 2.1 defaults to psycopg 3, not installed)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build an engine; SQLite gets foreign keys on and a busy timeout, PostgreSQL a pool and
    :data:`DEFAULT_PG_OPTIONS` (no JIT)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", DEFAULT_POOL_SIZE)
    kwargs.setdefault("max_overflow", DEFAULT_MAX_OVERFLOW)
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args["options"] = " ".join(filter(None, (DEFAULT_PG_OPTIONS, connect_args.get("options"))))
    return create_engine(url, connect_args=connect_args, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (workflows read them afterwards)."""
    return sessionmaker(engine, expire_on_commit=False)


_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: the configured DATABASE_URL), built once."""
    if url is None:
        from app.config import get_settings

        url = get_settings().database_url
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def insert_skipping_conflicts(session: Session, model: type[Any], *, keys: Sequence[Any]) -> Insert:
    """``INSERT INTO <model's table> ... ON CONFLICT (keys) DO NOTHING`` for the session's database.

    Execute it with a list of rows: they go in one statement (SQLAlchemy's "insert many
    values"), compiled once per process, and a row whose key a concurrent writer stored
    meanwhile is skipped instead of failing the transaction; add ``.returning(...)`` to learn
    which rows went in. On the table, not the ORM entity: ORM bulk inserts leave out None
    values and split rows with different None columns into several statements.
    PostgreSQL and SQLite (3.24+) both have it; ValueError elsewhere.
    """
    dialect = session.get_bind().dialect.name
    module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:
        raise InvalidValue(f"no INSERT ... ON CONFLICT DO NOTHING on {dialect}: use PostgreSQL or SQLite")
    return module.insert(model.__table__).on_conflict_do_nothing(index_elements=list(keys))


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on error, always closed."""
    factory = make_session_factory(get_engine(url))
    with factory() as session, session.begin():
        yield session
