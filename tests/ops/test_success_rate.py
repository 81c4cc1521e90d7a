"""One success rate: the jobs table, the chart, ``autopilot check`` and ``/metrics`` count the same
outcomes, and a post waiting for its user's approval is never a failure.

Rows are written as the workflows write them (a generated post in approval mode is a
``post.reviewed`` audit row with reason ``approval``; a failure handed to review one with its
reason), relative to the real clock, which the CLI and the admin read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from admin import create_app
from admin.auth import create_operator
from admin.ext import EXTENSION_KEY
from app.audit import record
from app.models import Post, PostStatus, ReviewReason, User, UserSettings
from app.ops.history import charts
from app.ops.stats import ALL_WORK, PUBLISHING, job_stats, total_stats
from tests.ops.test_admin_operations import PASSWORD, login
from tests.ops_harness import Ops


@pytest.fixture
def app(ops: Ops) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "SECRET_KEY": "rate-test", "DATABASE_URL": ops.settings.database_url,
                      "AUTOPILOT_SETTINGS": ops.settings})
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        create_operator(session, "olga", PASSWORD)
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


def sessions(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions[EXTENSION_KEY].session_factory


def approval_user(app: Flask, now: datetime) -> None:
    """Three posts waiting for approval, two approved and published since."""
    with sessions(app)() as session, session.begin():
        user = User(email="careful@example.com")
        session.add(user)
        session.flush()
        session.add(UserSettings(user_id=user.id, require_approval=True))
        for i in range(5):
            published = i < 2
            at = now - timedelta(hours=1, minutes=i)
            post = Post(user_id=user.id, platform="twitter", text=f"a{i}",
                        status=PostStatus.PUBLISHED if published else PostStatus.NEEDS_REVIEW,
                        review_reason=None if published else ReviewReason.APPROVAL, scheduled_at=at,
                        publish_started_at=at if published else None,
                        published_at=at + timedelta(seconds=1) if published else None)
            session.add(post)
            session.flush()
            record(session, "post.reviewed", user_id=user.id, post_id=post.id,
                   details={"reason": ReviewReason.APPROVAL, "slot": at.isoformat()})
            if published:
                record(session, "post.approved", user_id=user.id, post_id=post.id, actor="user")


def failing_user(app: Flask, now: datetime, published: int, failed: int) -> None:
    with sessions(app)() as session, session.begin():
        user = User(email="unlucky@example.com")
        session.add(user)
        session.flush()
        for i in range(published + failed):
            at = now - timedelta(hours=2, minutes=i)
            ok = i < published
            post = Post(user_id=user.id, platform="linkedin", text=f"f{i}",
                        status=PostStatus.PUBLISHED if ok else PostStatus.NEEDS_REVIEW,
                        review_reason=None if ok else ReviewReason.PERMANENT_ERROR, scheduled_at=at,
                        publish_started_at=at, published_at=at + timedelta(seconds=2) if ok else None)
            session.add(post)
            session.flush()
            if not ok:
                record(session, "post.reviewed", user_id=user.id, post_id=post.id,
                       details={"reason": ReviewReason.PERMANENT_ERROR, "error": "422 duplicate"})


def metrics_ratio(app: Flask, job: str) -> float:
    body = app.test_client().get("/metrics").get_data(as_text=True)
    family = next(f for f in text_string_to_metric_families(body) if f.name == "autopilot_job_success_ratio_24h")
    return next(s.value for s in family.samples if s.labels["autopilot_job"] == job)


def test_a_user_in_approval_mode_never_counts_as_failing(app: Flask, ops: Ops) -> None:
    now = datetime.now(UTC)
    ops.tick(now - timedelta(seconds=20))
    approval_user(app, now)

    result = ops.cli("check")
    assert result.exit_code == 0, result.output
    stats = ops.json("stats", "--since", "24h")
    row = next(j for j in stats["jobs"] if j["name"] == PUBLISHING)
    assert (row["succeeded"], row["failed"], row["success_rate"]) == (2, 0, 100.0)
    assert stats["publishing"]["failed"] == 0 and stats["publishing"]["published"] == 2
    assert metrics_ratio(app, PUBLISHING) == 1.0
    data = login(app.test_client()).get("/admin/operations/data.json").get_json()
    assert data["healthy"] is True and data["problems"] == []


def test_table_chart_check_and_metrics_give_one_rate(app: Flask, ops: Ops) -> None:
    now = datetime.now(UTC)
    ops.tick(now - timedelta(seconds=20))
    approval_user(app, now)
    failing_user(app, now, published=7, failed=2)  # with the approved two: 9 of 11, 81.8 %

    stats = ops.json("stats", "--since", "24h")
    row = next(j for j in stats["jobs"] if j["name"] == PUBLISHING)
    assert (row["succeeded"], row["failed"], row["success_rate"]) == (9, 2, 81.82)
    assert metrics_ratio(app, PUBLISHING) == pytest.approx(9 / 11)
    problems = ops.json("check")["problems"]
    assert any(p["subject"] == f"job:{PUBLISHING}" and p["detail"].startswith("81.8% of 11 finished runs")
               for p in problems), problems

    # The chart's buckets, summed over its window, are the table's "all work" row for that window.
    # The audit rows were written after ``now``, at the real clock's instant: read after them.
    later = datetime.now(UTC)
    with sessions(app)() as session:
        drawn = charts(session, later, "24h")
        since = min(drawn["outcomes"])
        table = total_stats(job_stats(session, since, later))
    chart_counts = (sum(t.succeeded for t in drawn["outcomes"].values()),
                    sum(t.failed for t in drawn["outcomes"].values()))
    assert chart_counts == (table.succeeded, table.failed) == (10, 2)  # the tick, 9 published; 2 failed
    hour = next(b for b, t in drawn["outcomes"].items() if t.failed)
    rate = dict(drawn["success_rate"][ALL_WORK])[hour]
    assert rate == drawn["outcomes"][hour].success_rate < 100
