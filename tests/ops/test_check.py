"""``autopilot check``: healthy passes, and each threshold, crossed on its own, fails naming it.

The world is real (PostgreSQL rows, Redis keys in Dramatiq's layout written by a real broker);
instants derive from now, as the command reads the real clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from app.db import make_engine, make_session_factory
from app.models import Post, PostStatus, User, WorkflowExecution
from tests.ops_harness import Ops


def healthy(ops: Ops) -> None:
    ops.tick(datetime.now(UTC) - timedelta(seconds=30))


def with_session(ops: Ops, work: Callable[[Session], None]) -> None:
    engine = make_engine(ops.settings.database_url)
    with make_session_factory(engine)() as session, session.begin():
        work(session)
    engine.dispose()


def crowd_reports(ops: Ops) -> None:
    for i in range(3):
        ops.send("reports", "weekly_report_for_user", i)


def failed_generation(ops: Ops) -> None:
    now = datetime.now(UTC)

    def add(session: Session) -> None:
        user = User(email="ops@example.com")
        session.add(user)
        session.flush()
        for i, status in enumerate(["succeeded"] * 18 + ["failed"] * 2):  # 90 %
            session.add(WorkflowExecution(workflow="daily_generation", user_id=user.id,
                                          slot=now - timedelta(hours=1, minutes=i), status=status,
                                          created_at=now - timedelta(hours=1), started_at=now - timedelta(hours=1),
                                          finished_at=now - timedelta(hours=1), duration_ms=1000 + i))
    with_session(ops, add)


def stuck_post(ops: Ops) -> None:
    now = datetime.now(UTC)

    def add(session: Session) -> None:
        user = User(email="ops@example.com")
        session.add(user)
        session.flush()
        session.add(Post(user_id=user.id, platform="twitter", text="late", status=PostStatus.QUEUED,
                         scheduled_at=now - timedelta(minutes=45), queued_at=now - timedelta(minutes=46)))
    with_session(ops, add)


def dead_letter(ops: Ops) -> None:
    ops.send("posting", "publish_post", 1, "token", "x")
    raw = ops.client.lpop("dramatiq:posting")
    data = ops.client.hget("dramatiq:posting.msgs", raw)
    ops.client.zadd("dramatiq:posting.XQ", {raw: 1})
    ops.client.hset("dramatiq:posting.XQ.msgs", raw, data)
    ops.client.hdel("dramatiq:posting.msgs", raw)


CASES = {
    # code: (what crosses it, extra CLI options)
    "no_worker": (lambda ops: ops.send("reports", "weekly_report_for_user", 1), []),
    "queue_depth": (crowd_reports, ["--max-depth", "3"]),
    "dead_letters": (dead_letter, []),
    "scheduler_silent": (lambda ops: ops.client.delete("unused"), ["--scheduler-silence", "20"]),
    "success_rate": (failed_generation, []),
    "posts_stuck": (stuck_post, []),
}


def test_healthy_passes(ops: Ops):
    healthy(ops)
    result = ops.cli("check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK")
    assert json.loads(ops.cli("check", "--json").stdout)["healthy"] is True


def test_the_scheduler_never_having_run_fails(ops: Ops):
    result = ops.cli("check")
    assert result.exit_code == 1
    assert "FAIL scheduler_silent [dispatch_due_posts]: never ran" in result.output


@pytest.mark.parametrize("code", list(CASES))
def test_each_threshold_fails_alone_and_is_named(ops: Ops, code: str):
    cross, options = CASES[code]
    healthy(ops)
    cross(ops)
    result = ops.cli("check", *options, "--json")
    assert result.exit_code == 1, result.output
    found = json.loads(result.stdout)["problems"]
    codes = {p["code"] for p in found}
    expected = {code} | ({"no_worker"} if code == "queue_depth" else set())
    assert codes == expected, found
    text = ops.cli("check", *options)
    assert text.exit_code == 1 and f"FAIL {code}" in text.output


def test_success_rate_names_the_job_and_its_queue(ops: Ops):
    healthy(ops)
    failed_generation(ops)
    subjects = {p["subject"] for p in ops.json("check")["problems"]}
    assert subjects == {"job:daily_generation per user", "queue:autonomous"}
    stats = ops.json("stats", "--since", "24h")
    row = next(j for j in stats["jobs"] if j["name"] == "daily_generation per user")
    assert (row["runs"], row["succeeded"], row["failed"], row["success_rate"]) == (20, 18, 2, 90.0)
    assert row["p50_ms"] == 1009.5 and row["p95_ms"] == 1018.0  # 1018.05, to 0.1 ms


def test_bad_thresholds_are_refused(ops: Ops):
    for args in (["--max-depth", "0"], ["--min-success-rate", "101"], ["--scheduler-silence", "x"]):
        result = ops.cli("check", *args)
        assert result.exit_code == 2, args
