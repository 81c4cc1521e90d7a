"""The ``autopilot`` command: users, accounts, exit codes, JSON output, nothing written on error."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.config import Settings
from app.crypto import generate_key
from app.db import make_engine
from app.models import User
from app.signin import LinkRefused, consume_link
from tests.cli import autopilot, autopilot_process

CREATE = ["users", "create", "a@example.com", "--timezone", "America/New_York", "--platform", "twitter=09:00",
          "--platform", "linkedin=10:00,17:00", "--frequency", "3", "--voice", "professional",
          "--creativity", "0.7", "--topic", "python", "--autonomous"]


def test_create_show_update_list(sqlite_url):
    assert autopilot(sqlite_url, *CREATE).returncode == 0
    shown = json.loads(autopilot(sqlite_url, "users", "show", "a@example.com", "--json").stdout)
    assert shown["settings"]["posting_times"] == {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]}
    assert shown["settings"]["enable_autonomous_mode"] is True
    updated = autopilot(sqlite_url, "users", "update", "a@example.com", "--frequency", "7", "--json")
    assert updated.returncode == 0 and json.loads(updated.stdout)["settings"]["content_frequency"] == 7
    listed = json.loads(autopilot(sqlite_url, "users", "list", "--json").stdout)
    assert [u["email"] for u in listed] == ["a@example.com"]


@pytest.mark.parametrize(("args", "field"), [
    (["--timezone", "Nowhere/Land"], "timezone"),
    (["--platform", "twitter=25:00"], "posting_times"),
    (["--frequency", "0"], "content_frequency"),
    (["--platform", "twitter"], "platform"),
    (["--creativity", "2"], "creativity_level"),
])
def test_bad_input_exits_non_zero_naming_the_field_and_writes_nothing(sqlite_url, args, field):
    result = autopilot(sqlite_url, "users", "create", "b@example.com", *args)
    assert result.returncode == 2
    assert field in result.stderr and "Nothing was written" in result.stderr
    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
    engine.dispose()


def test_unknown_user_exits_non_zero(sqlite_url):
    result = autopilot(sqlite_url, "users", "show", "ghost@example.com")
    assert result.returncode == 3 and "ghost@example.com" in result.stderr


def test_accounts_connect_encrypts_the_token(sqlite_url):
    env = {"TOKEN_ENCRYPTION_KEYS": generate_key()}
    assert autopilot(sqlite_url, *CREATE).returncode == 0
    result = autopilot(sqlite_url, "accounts", "connect", "--user", "a@example.com", "--platform", "twitter",
                       "--access-token", "tok-PLAIN", "--refresh-token", "ref-PLAIN",
                       "--expires-at", "2027-01-01T00:00:00Z", "--json", extra_env=env)
    assert result.returncode == 0, result.stderr
    assert "PLAIN" not in result.stdout
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert "PLAIN" not in repr(conn.execute(text("SELECT * FROM platform_accounts")).all())
    engine.dispose()
    shown = autopilot(sqlite_url, "users", "show", "a@example.com", "--json", extra_env=env)
    assert "PLAIN" not in shown.stdout and "gAAAA" not in shown.stdout


def test_malformed_environment_is_reported_by_variable(sqlite_url):
    result = autopilot(sqlite_url, "users", "list", extra_env={"TOKEN_ENCRYPTION_KEYS": "bad"})
    assert result.returncode == 2 and "TOKEN_ENCRYPTION_KEYS" in result.stderr


def test_the_console_entry_point_exits_with_the_same_statuses_as_in_process(sqlite_url):
    """The real ``python -m app``: success, refused input and a malformed environment."""
    assert autopilot_process(sqlite_url, *CREATE).returncode == 0
    refused = autopilot_process(sqlite_url, "users", "create", "b@example.com", "--frequency", "0")
    assert refused.returncode == 2
    assert "content_frequency" in refused.stderr and "Nothing was written" in refused.stderr
    missing = autopilot_process(sqlite_url, "users", "show", "ghost@example.com")
    assert missing.returncode == 3 and "ghost@example.com" in missing.stderr
    broken = autopilot_process(sqlite_url, "users", "list", extra_env={"TOKEN_ENCRYPTION_KEYS": "bad"})
    assert broken.returncode == 2 and "TOKEN_ENCRYPTION_KEYS" in broken.stderr


def test_invite_prints_a_one_time_link_under_portal_base_url(sqlite_url):
    assert autopilot(sqlite_url, *CREATE).returncode == 0
    env = {"PORTAL_BASE_URL": "https://portal.example.com", "SECRET_KEY": "cli-test-secret"}
    result = autopilot(sqlite_url, "users", "invite", "a@example.com", extra_env=env)
    assert result.returncode == 0
    link = result.stdout.strip()
    assert link.startswith("https://portal.example.com/signin/")
    engine = make_engine(sqlite_url)
    settings = Settings(secret_key="cli-test-secret")
    token = link.rsplit("/", 1)[1]
    with Session(engine) as session, session.begin():
        assert consume_link(session, settings, token, now=utcnow()).email == "a@example.com"
    with Session(engine) as session, session.begin(), pytest.raises(LinkRefused):
        consume_link(session, settings, token, now=utcnow())
    engine.dispose()


def test_invite_of_an_unknown_or_disabled_user_exits_non_zero(sqlite_url):
    assert autopilot(sqlite_url, "users", "invite", "ghost@example.com").returncode == 3
    assert autopilot(sqlite_url, *CREATE).returncode == 0
    assert autopilot(sqlite_url, "users", "disable", "a@example.com").returncode == 0
    result = autopilot(sqlite_url, "users", "invite", "a@example.com")
    assert result.returncode == 3 and "no active user" in result.stderr
