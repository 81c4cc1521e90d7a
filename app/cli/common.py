"""What every command shares: settings, sessions, output as text or JSON, error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import session_scope
from app.errors import AutopilotError, ConfigError, FieldError, NotFound, ValidationError
from app.platforms import KNOWN_PLATFORMS, platform_list

#: Exit status for input the command refused (a bad setting, an unknown time zone...).
EXIT_BAD_INPUT = 2
#: Exit status when the named user, post or account does not exist.
EXIT_NOT_FOUND = 3

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


class PlatformChoice(click.ParamType):
    """A platform key from the registry (read when used, so help and checks follow it)."""

    name = "platform"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(KNOWN_PLATFORMS) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        key = str(value).strip().lower()
        if key not in KNOWN_PLATFORMS:
            self.fail(f"unknown platform {value!r}; known: {platform_list()}", param, ctx)
        return key


#: Columns used when output is not a terminal (piped, CI logs), where rich would assume 80.
PIPED_WIDTH = 120


def console(*, stderr: bool = False, piped_width: int = PIPED_WIDTH) -> Console:
    """A rich console: the terminal's width, or a readable fixed one when piped."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=piped_width)


def settings() -> Settings:
    return get_settings()


@contextmanager
def session() -> Iterator[Session]:
    with session_scope(settings().database_url) as s:
        yield s


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON for scripts, or through ``render`` for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=_default, ensure_ascii=False))
    else:
        render(data)


class GuardedGroup(click.Group):
    """The top-level group: known errors become a clear message and a documented exit status.

    The translation lives in ``main`` itself, so the console script and click's ``CliRunner``
    (the tests' in-process runner) exit the same way for the same input.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except ValidationError as exc:
            for error in exc.errors:
                click.echo(f"error: {error}", err=True)
            click.echo("Nothing was written.", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except ConfigError as exc:
            click.echo(f"configuration error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except NotFound as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_NOT_FOUND)
        except AutopilotError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def parse_instant(field: str, value: str) -> datetime:
    """An ISO 8601 instant with an offset (``2026-12-01T09:00:00+01:00`` or ``...Z``)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError([FieldError(field, value, "not an ISO 8601 date-time")]) from None
    if parsed.tzinfo is None:
        raise ValidationError([FieldError(field, value, "needs a UTC offset, e.g. +01:00 or Z")])
    return parsed.astimezone(UTC)
