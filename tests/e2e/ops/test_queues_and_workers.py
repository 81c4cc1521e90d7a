"""Queue, dead-letter and worker counts against real Redis and real ``dramatiq`` worker processes.

Known messages are sent, then the CLI must report exactly them: waiting on a queue nobody
consumes, delayed messages held in a live worker's memory (Dramatiq's ``.DQ`` list is empty
while its ``.DQ.msgs`` hash still counts them), dead letters with their secrets masked, and
the worker processes with the queues each consumes.
"""

from __future__ import annotations

import signal

import pytest

from app.ops import probe
from tests.ops_harness import Ops
from tests.workers import wait_for

pytestmark = pytest.mark.slow

CLAIM_TOKEN = "c0ffee5ecret7oken0123456789abcdef"
#: Far enough ahead that the delayed publishes stay in the worker's memory for the whole test.
DELAY_MS = 10 * 60 * 1000


def live_workers(ops: Ops) -> list[dict]:
    return [w for w in ops.json("workers")["workers"] if w["alive"]]


def depth(ops: Ops, queue: str) -> dict:
    return next(q for q in ops.json("queues") if q["queue"] == queue)


def test_exact_waiting_delayed_dead_and_worker_counts(ops: Ops):
    posting = ops.start_worker("posting", processes=2, threads=2)
    other = ops.start_worker("metrics", "autonomous", processes=1, threads=1)
    assert wait_for(lambda: len(live_workers(ops)) == 3, 30), posting.stderr() + other.stderr()

    for execution_id in (101, 102, 103):  # nobody consumes "reports": they wait
        ops.send("reports", "weekly_report_for_user", execution_id)
    for post_id in (1, 2, 3, 4):  # due in 10 minutes: a posting worker holds them
        ops.send("posting", "publish_post", post_id, CLAIM_TOKEN, None, delay=DELAY_MS)
    for post_id in (5, 6):  # max_retries=0 and an unparsable due_at: dead-lettered at once
        ops.send("posting", "publish_post", post_id, CLAIM_TOKEN, "not-an-instant")

    assert wait_for(lambda: ops.client.zcard("dramatiq:posting.XQ") == 2, 30), posting.stderr()
    assert wait_for(lambda: ops.client.llen("dramatiq:posting.DQ") == 0, 10)
    queues = {q["queue"]: q for q in ops.json("queues")}
    assert queues["reports"] == {"queue": "reports", "waiting": 3, "in_flight": 0, "delayed": 0, "dead": 0,
                                 "depth": 3}
    assert queues["posting"] == {"queue": "posting", "waiting": 0, "in_flight": 0, "delayed": 4, "dead": 2,
                                 "depth": 4}
    assert all(q["depth"] == 0 and q["dead"] == 0 for name, q in queues.items()
               if name not in ("reports", "posting"))
    # Held by a worker, not waiting in Redis's delay list: only the hash knows about them.
    assert ops.client.llen("dramatiq:posting.DQ") == 0
    assert ops.client.hlen("dramatiq:posting.DQ.msgs") == 4

    assert probe.main(["worker"]) == 0  # the compose healthcheck: a live worker from this host
    workers = live_workers(ops)
    assert sorted(w["pid"] for w in workers) == sorted(set(w["pid"] for w in workers))
    assert sorted(tuple(w["queues"]) for w in workers) == [("autonomous", "metrics"), ("posting",), ("posting",)]
    assert {w["threads"] for w in workers if w["queues"] == ["posting"]} == {2}

    letters = ops.json("queues", "dead", "posting")
    assert [letter["args"][0] for letter in sorted(letters, key=lambda x: x["args"][0])] == [5, 6]
    for letter in letters:
        assert letter["actor"] == "publish_post"
        assert letter["args"][1] == "***"  # the claim token is a capability: never shown
        assert "ValueError" in letter["failure"] and "not-an-instant" in letter["failure"]
    assert CLAIM_TOKEN not in ops.cli("queues", "dead", "posting").output

    check = ops.cli("check", "--json")
    assert check.exit_code == 1
    codes = {(p["code"], p["subject"]) for p in __import__("json").loads(check.stdout)["problems"]}
    assert ("no_worker", "reports") in codes and ("dead_letters", "posting") in codes
    assert ("no_worker", "posting") not in codes

    # Declining the confirmation changes nothing; --yes requeues both, and they die again.
    declined = ops.cli("queues", "dead", "posting", "--requeue", input="n\n")
    assert declined.exit_code != 0 and ops.client.zcard("dramatiq:posting.XQ") == 2
    requeued = ops.cli("queues", "dead", "posting", "--requeue", "--yes", "--json")
    assert requeued.exit_code == 0 and len(__import__("json").loads(requeued.stdout)["ids"]) == 2
    assert wait_for(lambda: ops.client.zcard("dramatiq:posting.XQ") == 2
                    and depth(ops, "posting")["in_flight"] == 0, 30)
    assert {r["retries"] for r in ops.json("queues", "dead", "posting")} == {0}
    purged = ops.cli("queues", "dead", "posting", "--purge", input="y\n")
    assert purged.exit_code == 0, purged.output
    assert depth(ops, "posting")["dead"] == 0 and ops.client.hlen("dramatiq:posting.XQ.msgs") == 0

    # A worker stopped cleanly leaves the registry; one killed stops counting after the timeout.
    other.stop(signal.SIGTERM)
    assert wait_for(lambda: sorted(tuple(w["queues"]) for w in live_workers(ops)) == [("posting",)] * 2, 15)
    posting.stop(signal.SIGKILL)
    assert wait_for(lambda: live_workers(ops) == [], 10)
    assert probe.main(["worker"]) == 1
    assert depth(ops, "posting")["delayed"] == 4  # still in Redis, waiting for a worker
    codes = {(p["code"], p["subject"]) for p in ops.json("check")["problems"]}
    assert ("no_worker", "posting") in codes
