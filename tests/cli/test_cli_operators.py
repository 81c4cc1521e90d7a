"""``autopilot operators create|list|passwd|disable``, through click's CliRunner, audited."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from app.cli import cli
from app.config import get_settings
from app.db import make_engine
from app.models import AuditLog, Operator

SECRET = "a long enough secret"


@pytest.fixture
def runner(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def rows(url: str, model: type) -> list:  # type: ignore[type-arg]
    engine = make_engine(url)
    with Session(engine) as session:
        found = list(session.scalars(select(model)))
    engine.dispose()
    return found


def test_create_list_passwd_disable(runner: CliRunner, sqlite_url: str) -> None:
    created = runner.invoke(cli, ["operators", "create", "alice"], input=f"{SECRET}\n{SECRET}\n")
    assert created.exit_code == 0, created.output
    listed = runner.invoke(cli, ["operators", "list", "--json"])
    [alice] = json.loads(listed.output)
    assert (alice["username"], alice["disabled"]) == ("alice", False)
    assert "password" not in listed.output and "scrypt" not in listed.output

    changed = runner.invoke(cli, ["operators", "passwd", "alice"], input="another long secret\n" * 2)
    assert changed.exit_code == 0, changed.output
    [operator] = rows(sqlite_url, Operator)
    assert check_password_hash(operator.password_hash, "another long secret")
    assert operator.session_generation == 1  # open sessions ended

    disabled = runner.invoke(cli, ["operators", "disable", "alice"])
    assert disabled.exit_code == 0, disabled.output
    assert "disabled" in runner.invoke(cli, ["operators", "list"]).output
    actions = [(r.action, r.actor, r.details) for r in rows(sqlite_url, AuditLog)]
    assert actions == [("operator.created", "cli", {"operator": "alice"}),
                       ("operator.password_changed", "cli", {"operator": "alice"}),
                       ("operator.disabled", "cli", {"operator": "alice"})]


@pytest.mark.parametrize(
    ("args", "stdin", "status", "message"),
    [
        (["operators", "create", "bob"], "short\nshort\n", 2, "password: at least 10 characters"),
        (["operators", "passwd", "nobody"], f"{SECRET}\n{SECRET}\n", 3, "no operator named 'nobody'"),
        (["operators", "disable", "nobody"], "", 3, "no operator named 'nobody'"),
    ],
)
def test_bad_input_is_refused_by_name(runner: CliRunner, sqlite_url: str, args: list[str], stdin: str,
                                      status: int, message: str) -> None:
    result = runner.invoke(cli, args, input=stdin)
    assert result.exit_code == status  # the documented statuses: 2 refused input, 3 not found
    assert message in result.stderr
    assert rows(sqlite_url, Operator) == []


def test_a_taken_name_is_refused(runner: CliRunner) -> None:
    runner.invoke(cli, ["operators", "create", "alice"], input=f"{SECRET}\n{SECRET}\n")
    again = runner.invoke(cli, ["operators", "create", "alice"], input=f"{SECRET}\n{SECRET}\n")
    assert again.exit_code == 2 and "an operator with this name exists" in again.stderr
