"""The ``autopilot`` command. Each command group lives in its own module of this package."""

from __future__ import annotations

import click

from app.cli.common import GuardedGroup
from app.cli.db import db
from app.cli.doctor import doctor
from app.cli.operators import operators
from app.cli.ops import check, queues, stats, workers
from app.cli.posts import posts
from app.cli.run import demo, run
from app.cli.schedule import jobs, schedule
from app.cli.users import accounts, keys, users


@click.group(cls=GuardedGroup)
@click.version_option(package_name="content-autopilot")
def cli() -> None:
    """Content autopilot: research, write, schedule and publish posts, on time and once."""


for command in (db, users, accounts, keys, demo, run, posts, schedule, jobs, doctor, operators,
                queues, workers, stats, check):
    cli.add_command(command)


def main() -> None:
    """Console entry point (errors are turned into exit statuses by :class:`GuardedGroup`)."""
    cli()
