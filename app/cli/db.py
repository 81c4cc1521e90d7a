"""``autopilot db``: schema migrations."""

from __future__ import annotations

import click

from app import migrate
from app.cli.common import settings


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (DATABASE_URL, default a local SQLite file)."""
    migrate.upgrade(settings().database_url, revision)
    click.echo(f"database at {revision}")
