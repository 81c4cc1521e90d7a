"""Alembic builds the schema on PostgreSQL and SQLite, round-trips, and matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app import migrate
from app.db import make_engine
from app.models import Base
from tests import services


def _drift(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_postgresql_upgrade_downgrade_upgrade_round_trip():
    url = services.create_pg_database()
    try:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        engine = make_engine(url)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        migrate.upgrade(url)
        assert _drift(url) == []
    finally:
        services.drop_pg_database(url)


def test_models_and_migrations_do_not_drift_on_postgresql(pg_url):
    assert _drift(pg_url) == []


def test_sqlite_round_trip_and_no_drift(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    assert _drift(url) == []
