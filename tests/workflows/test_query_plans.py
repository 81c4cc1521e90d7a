"""The hot queries read a big ``posts`` table through the intended indexes, estimated right.

200,000 posts on real PostgreSQL (100,000 scheduled tomorrow, 100,000 past ones published,
cancelled or in review) plus a few live posts each query must find; ANALYZE; then the real
workflows run while :func:`bench.plans.explained` runs ``EXPLAIN (ANALYZE)`` of each SELECT
they send on ``posts``. Each plan must read ``posts`` through the expected index, estimate
every node's rows within 10x of the actual count, and not be JIT-compiled (``app.db`` turns JIT
off). ``python -m bench.dispatch_scaling`` does the same at two million rows and times it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text

from app.config import Settings
from app.crypto import generate_key
from app.models import Post, PostStatus
from app.runtime import Runtime
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.metrics import collect_metrics_for_user, users_with_metrics_due
from app.workflows.publish_outcomes import review_queue_size
from app.workflows.report import weekly_report_for_user
from app.workflows.sweep import sweep_stuck_posts
from bench.history import insert_future, insert_live, insert_past, insert_users
from bench.plans import Plan, explained

USERS = 1_000
ROWS = 100_000

DUE = {"ix_posts_scheduled_due_at"}
QUEUED = {"ix_posts_queued_scheduled_at"}
PUBLISHING = {"ix_posts_publishing_started_at"}
USER_REVIEW = {"ix_posts_needs_review_user_id"}
# Any index led by status counts a status exactly (PostgreSQL takes the smaller one).
REVIEW = {"ix_posts_status_scheduled_at", "ix_posts_status_published_at"}
MEASURABLE = {"ix_posts_measurable_at"}
USER_POSTS = {"ix_posts_user_id_scheduled_at"}


def analyze(engine: Engine) -> None:
    """Statistics from every row, not ANALYZE's default 30,000-row random sample: the live posts
    are a few dozen among 200,000, and a sample that missed them made the estimates (and so
    this test) vary from run to run."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET default_statistics_target = 10000"))
        conn.execute(text("ANALYZE posts"))


@pytest.fixture(scope="module")
def big(pg_url: str) -> Iterator[tuple[Engine, datetime]]:
    """The run's database with 200,000 posts, analysed; emptied again afterwards."""
    from app.db import make_engine

    now = datetime.now(UTC).replace(microsecond=0)
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE users, posts, audit_log, notifications, metric_snapshots, "
                          "workflow_executions, memory_entries RESTART IDENTITY CASCADE"))
        insert_users(conn, USERS, now)
        insert_future(conn, ROWS, now, USERS)
        insert_past(conn, ROWS, "mixed", now, USERS)
        insert_live(conn, now, USERS)
    analyze(engine)
    yield engine, now
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE users, posts RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="module")
def runtime(pg_url: str, big: tuple[Engine, datetime]) -> Runtime:
    now = big[1]
    settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),))
    return Runtime.from_settings(settings, clock=lambda: now)


def engine_of(runtime: Runtime) -> Engine:
    return runtime.session_factory.kw["bind"]


def only(plans: list[Plan], what: str) -> Plan:
    assert len(plans) >= 1, f"no {what} query was sent"
    return plans[0]


def check(plan: Plan, indexes: set[str], *, rows_at_least: int = 1) -> None:
    assert plan.problems(indexes=indexes) == [], plan.render()
    assert plan.indexes("posts") & indexes, plan.render()
    assert plan.root["Actual Rows"] >= rows_at_least, plan.render()


def test_dispatch_reads_only_due_scheduled_posts(runtime: Runtime, big: tuple[Engine, datetime]) -> None:
    with explained(engine_of(runtime)) as seen:
        intents = dispatch_due_posts(runtime, big[1])
    assert len(intents) == 40  # the due ones; the 5 overdue ones went to review
    due = only(seen.reading("CASE WHEN"), "due posts")
    check(due, DUE, rows_at_least=45)
    # Sending the overdue ones to review tells their users in one notice each: the posts read
    # back by primary key (one statement for all of them), never a scan of a user's posts.
    notice = only([p for p in seen.reading("LEFT OUTER JOIN user_settings") if "posts.id IN" in p.statement],
                  "posts sent to review")
    check(notice, {"pk_posts"})


def test_sweep_reads_lost_and_abandoned_posts_through_live_indexes(
        runtime: Runtime, big: tuple[Engine, datetime]) -> None:
    now = big[1]
    # The dispatch test may have claimed the due posts since the statistics were taken.
    analyze(engine_of(runtime))
    with explained(engine_of(runtime)) as seen:
        sweep_stuck_posts(runtime, now)
    lost = only([p for p in seen.reading("queued_at") if "publish_started_at <" not in p.statement
                 and "FROM posts" in p.statement], "lost posts")
    check(lost, QUEUED, rows_at_least=20)
    abandoned = only(seen.reading("LEFT OUTER JOIN platform_accounts"), "abandoned posts")
    check(abandoned, PUBLISHING, rows_at_least=10)
    due = only(seen.reading("CASE WHEN"), "due posts")
    check(due, DUE, rows_at_least=0)


def test_review_queue_counts_and_lists_through_indexes(runtime: Runtime) -> None:
    engine = engine_of(runtime)
    with explained(engine) as seen, runtime.session_factory() as session:
        total = review_queue_size(session)
        one_user = review_queue_size(session, user_id=3)
        # The admin's review queue page: needs_review posts, oldest first, a page at a time.
        page = session.scalars(select(Post).where(Post.status == PostStatus.NEEDS_REVIEW)
                               .order_by(Post.scheduled_at).limit(20)).all()
    assert total > 30_000 and one_user > 0 and len(page) == 20
    total_plan, user_plan, page_plan = seen.plans
    check(total_plan, REVIEW | USER_REVIEW)
    check(user_plan, USER_REVIEW)
    check(page_plan, REVIEW)


def test_metrics_and_report_queries_use_indexes(runtime: Runtime, big: tuple[Engine, datetime]) -> None:
    now = big[1]
    engine = engine_of(runtime)
    with explained(engine) as fan_out, runtime.session_factory() as session:
        users = users_with_metrics_due(session, now)
    assert len(users) > 100
    check(only(fan_out.plans, "users with metrics due"), MEASURABLE, rows_at_least=100)
    with explained(engine) as seen:
        counts = collect_metrics_for_user(runtime, users[0], now)
    assert counts["due"] >= 1
    check(only(seen.reading("external_id"), "one user's due posts"), MEASURABLE | USER_POSTS)
    with explained(engine) as seen:
        weekly_report_for_user(runtime, users[0], now - timedelta(hours=1))
    check(only(seen.reading("FROM posts"), "the week's posts"), USER_POSTS, rows_at_least=5)
