"""``autopilot posts``: schedule, list, show, approve, cancel; bad input writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import make_engine
from app.models import Post, PostStatus, User
from tests.cli import autopilot

USER = ["users", "create", "a@example.com", "--timezone", "Europe/Paris", "--platform", "twitter=09:00"]
AT = "2099-12-01T09:00:00+01:00"


@pytest.fixture
def user_url(sqlite_url: str) -> str:
    result = autopilot(sqlite_url, *USER)
    assert result.returncode == 0, result.stderr
    return sqlite_url


def post_count(url: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Post)) or 0
    engine.dispose()
    return count


def test_schedule_list_show_approve_cancel(user_url):
    made = autopilot(user_url, "posts", "schedule", "--user", "a@example.com", "--platform", "twitter",
                     "--at", AT, "--text", "Hello from the autopilot", "--json")
    assert made.returncode == 0, made.stderr
    post = json.loads(made.stdout)
    assert post["status"] == "scheduled" and post["origin"] == "manual"
    assert post["scheduled_at"] == "2099-12-01T08:00:00+00:00"
    assert post["scheduled_local"] == "2099-12-01T09:00:00+01:00" and post["timezone"] == "Europe/Paris"

    listed = json.loads(autopilot(user_url, "posts", "list", "--user", "a@example.com", "--json").stdout)
    assert [p["id"] for p in listed] == [post["id"]]
    assert json.loads(autopilot(user_url, "posts", "list", "--status", "cancelled", "--json").stdout) == []

    shown = autopilot(user_url, "posts", "show", str(post["id"]))
    assert shown.returncode == 0 and "2099-12-01 08:00 UTC" in shown.stdout and "Europe/Paris" in shown.stdout

    approved = autopilot(user_url, "posts", "approve", str(post["id"]), "--at", "2099-12-02T10:00:00Z",
                         "--text", "Edited text", "--json")
    assert approved.returncode == 0, approved.stderr
    data = json.loads(approved.stdout)
    assert data["text"] == "Edited text" and data["scheduled_at"] == "2099-12-02T10:00:00+00:00"

    cancelled = autopilot(user_url, "posts", "cancel", str(post["id"]), "--json")
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["status"] == "cancelled"
    again = autopilot(user_url, "posts", "approve", str(post["id"]))
    assert again.returncode == 2 and "status" in again.stderr

    missing = autopilot(user_url, "posts", "show", "999")
    assert missing.returncode == 3 and "999" in missing.stderr


def test_show_explains_reviewed_and_simulated_posts(user_url):
    engine = make_engine(user_url)
    with Session(engine) as session, session.begin():
        user_id = session.scalar(select(User.id))
        at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
        session.add_all([
            Post(user_id=user_id, platform="twitter", text="t1", status=PostStatus.NEEDS_REVIEW, scheduled_at=at,
                 review_reason="outcome_unknown", last_error="X timed out after the request was sent"),
            Post(user_id=user_id, platform="linkedin", text="t2", status=PostStatus.PUBLISHED, scheduled_at=at,
                 published_at=at, external_id="sandbox-42"),
        ])
    engine.dispose()
    reviewed = autopilot(user_url, "posts", "show", "1")
    assert "outcome_unknown" in reviewed.stdout and "X timed out" in reviewed.stdout
    published = autopilot(user_url, "posts", "show", "2")
    assert "sandbox-42" in published.stdout and "sandbox (simulated)" in published.stdout
    rows = json.loads(autopilot(user_url, "posts", "list", "--status", "needs_review", "--json").stdout)
    assert [(r["id"], r["review_reason"]) for r in rows] == [(1, "outcome_unknown")]
    assert json.loads(autopilot(user_url, "posts", "show", "2", "--json").stdout)["simulated"] is True


@pytest.mark.parametrize(("change", "field"), [
    ({"--platform": "myspace"}, "platform"),
    ({"--at": "2020-01-01T09:00:00Z"}, "at"),
    ({"--at": "2099-12-01T09:00:00"}, "at"),
    ({"--text": "x" * 300}, "text"),
    ({"--user": "ghost@example.com"}, "ghost@example.com"),
])
def test_bad_one_off_exits_non_zero_naming_the_field_and_writes_nothing(user_url, change, field):
    options = {"--user": "a@example.com", "--platform": "twitter", "--at": AT, "--text": "Hello", **change}
    result = autopilot(user_url, "posts", "schedule", *[x for pair in options.items() for x in pair])
    assert result.returncode == (3 if field.startswith("ghost") else 2), result.stderr
    assert field in result.stderr
    assert post_count(user_url) == 0
