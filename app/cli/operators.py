"""``autopilot operators``: the admin panel's logins (create, list, passwd, disable).

Passwords are asked twice on the terminal (or read from standard input when piped) and are
never accepted as an option, so they stay out of shell history and process listings.
"""

from __future__ import annotations

import click
from rich.table import Table

from app import operators as operator_service
from app.cli.common import console, emit, json_option, session


def _ask_password() -> str:
    """The new password, typed twice without echo (or two lines of standard input)."""
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def operators() -> None:
    """Admin panel operators (logins)."""


@operators.command()
@click.argument("username")
def create(username: str) -> None:
    """Create an operator (the password is asked twice)."""
    password = _ask_password()
    with session() as s:
        operator_service.create_operator(s, username, password, actor="cli")
    click.echo(f"operator {username.strip()} created")


@operators.command(name="list")
@json_option
def list_(as_json: bool) -> None:
    """List operators (never their password hashes)."""
    with session() as s:
        rows = [
            {"username": o.username, "created_at": o.created_at, "disabled": o.disabled}
            for o in operator_service.list_operators(s)
        ]

    def render(data: list[dict[str, object]]) -> None:
        table = Table("username", "created (UTC)", "status")
        for row in data:
            table.add_row(str(row["username"]), f"{row['created_at']:%Y-%m-%d %H:%M}",
                          "disabled" if row["disabled"] else "active")
        console().print(table)

    emit(rows, as_json, render)


@operators.command()
@click.argument("username")
def passwd(username: str) -> None:
    """Change an operator's password (asked twice); their open sessions end."""
    password = _ask_password()
    with session() as s:
        operator_service.set_password(s, username, password, actor="cli")
    click.echo(f"password of {username.strip()} changed; their sessions were ended")


@operators.command()
@click.argument("username")
def disable(username: str) -> None:
    """Disable an operator: no login, open sessions end."""
    with session() as s:
        operator_service.disable_operator(s, username, actor="cli")
    click.echo(f"operator {username.strip()} disabled")
