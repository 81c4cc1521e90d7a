"""The admin's Operations page, /metrics, /healthz and /readyz on real PostgreSQL and Redis."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from admin import create_app
from admin.auth import create_operator
from admin.ext import EXTENSION_KEY
from app.models import AuditLog, JobRun
from tests.ops.seed import seed
from tests.ops_harness import Ops

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def app(ops: Ops) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "SECRET_KEY": "ops-test", "DATABASE_URL": ops.settings.database_url,
                      "AUTOPILOT_SETTINGS": ops.settings})
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        create_operator(session, "olga", PASSWORD)
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


def login(client: FlaskClient) -> FlaskClient:
    token = _CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"username": "olga", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def page_token(client: FlaskClient) -> str:
    return _CSRF.search(client.get("/admin/operations/").get_data(as_text=True)).group(1)


def sessions(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions[EXTENSION_KEY].session_factory


def test_healthz_and_readyz_need_no_login_and_time_each_dependency(app: Flask, ops: Ops):
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["status"] == "ready"
    assert {name: c["ok"] for name, c in ready.json["checks"].items()} == {"database": True, "redis": True}
    assert all(c["ms"] >= 0 for c in ready.json["checks"].values())


def test_readyz_is_503_naming_redis_when_it_is_unreachable(ops: Ops):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": ops.settings.database_url,
                      "REDIS_URL": "redis://127.0.0.1:1/0"})
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["redis"]["ok"] is False and ready.json["checks"]["database"]["ok"] is True
    app.extensions[EXTENSION_KEY].engine.dispose()


SERIES = {
    "autopilot_broker_up", "autopilot_database_up", "autopilot_queue_waiting", "autopilot_queue_in_flight",
    "autopilot_queue_delayed", "autopilot_queue_dead", "autopilot_queue_depth", "autopilot_queue_workers",
    "autopilot_workers_live", "autopilot_scheduler_last_run_timestamp_seconds", "autopilot_job_runs_24h",
    "autopilot_job_failures_24h", "autopilot_job_over_time_limit_24h", "autopilot_job_success_ratio_24h",
    "autopilot_publish_lateness_seconds", "autopilot_posts", "autopilot_posts_stuck",
}


def test_metrics_parse_with_prometheus_client_and_carry_every_series(app: Flask, ops: Ops):
    now = datetime.now(UTC)
    seed(app, now)
    for i in range(3):
        ops.send("reports", "weekly_report_for_user", i)
    response = app.test_client().get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert SERIES <= set(families), SERIES - set(families)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("autopilot_queue_waiting", (("queue", "reports"),))] == 3
    assert samples[("autopilot_queue_depth", (("queue", "posting"),))] == 0
    assert samples[("autopilot_posts", (("status", "published"),))] == 2
    assert samples[("autopilot_posts", (("status", "needs_review"),))] == 1
    assert samples[("autopilot_posts", (("status", "failed"),))] == 0
    assert samples[("autopilot_job_failures_24h", (("autopilot_job", "daily_generation"), ("queue", "autonomous")))] == 1
    assert samples[("autopilot_job_success_ratio_24h", (("autopilot_job", "daily_generation"), ("queue", "autonomous")))] == 0
    lateness = families["autopilot_publish_lateness_seconds"]
    assert lateness.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in lateness.samples
               if s.name.endswith("_bucket") and s.labels["platform"] == "twitter"}
    assert (buckets["0.25"], buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == (1, 1, 2, 2)
    count = next(s.value for s in lateness.samples if s.name.endswith("_count") and s.labels["platform"] == "twitter")
    assert count == 2
    assert samples[("autopilot_scheduler_last_run_timestamp_seconds", ())] == pytest.approx(
        (now - timedelta(seconds=5)).timestamp(), abs=0.01)


def test_operations_page_needs_login_and_shows_the_cli_figures(app: Flask, ops: Ops):
    client = app.test_client()
    assert client.get("/admin/operations/").status_code == 302
    assert client.get("/admin/operations/data.json").status_code == 302
    login(client)
    now = datetime.now(UTC)
    seed(app, now)
    for i in range(2):
        ops.send("reports", "weekly_report_for_user", i)
    ops.send("posting", "publish_post", 1, "tok", None, delay=600_000)
    page = client.get("/admin/operations/").get_data(as_text=True)
    cli = {q["queue"]: q for q in ops.json("queues")}
    assert cli["reports"]["waiting"] == 2 and cli["posting"]["delayed"] == 1
    for queue, row in cli.items():
        for field in ("waiting", "in_flight", "delayed", "dead"):
            assert re.search(rf'id="q-{queue}-{field}"[^>]*>{row[field]}<', page), (queue, field)
    data = client.get("/admin/operations/data.json").json
    assert {q["queue"]: q for q in data["queues"]} == cli
    assert {p["code"] for p in data["problems"]} == {"no_worker", "success_rate"}
    assert 'data-points="0"' not in page.split('id="chart-depth-24h"')[1][:300]
    # The job's runs are one click away, filtered on the job.
    link = re.search(r'href="(/admin/jobs/\?flt0_0=daily_generation)"', page)
    assert link and "daily_generation" in client.get(link.group(1)).get_data(as_text=True)
    charts = client.get("/admin/operations/charts?range=7d").get_data(as_text=True)
    assert charts.count("<canvas") == 4 and charts.count('class="chart-table"') == 4
    assert re.search(r'id="chart-published-7d"[^>]* data-points="168"', charts)


def test_run_a_failed_slot_again_is_csrf_protected_audited_and_sent_once(app: Flask, ops: Ops):
    client = login(app.test_client())
    now = datetime.now(UTC)
    seed(app, now)
    slot = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    data = {"job": "daily_generation", "slot": slot.isoformat()}
    refused = client.post("/admin/operations/rerun", data=data, follow_redirects=True)
    assert "form was stale" in refused.get_data(as_text=True)
    assert ops.client.llen("dramatiq:legacy") == 0
    done = client.post("/admin/operations/rerun", data={**data, "csrf_token": page_token(client)},
                       follow_redirects=True)
    assert "sent again" in done.get_data(as_text=True)
    assert ops.client.llen("dramatiq:legacy") == 1
    message = json.loads(next(iter(ops.client.hvals("dramatiq:legacy.msgs"))))
    assert (message["actor_name"], message["args"]) == ("run_job_manually", ["daily_generation", slot.isoformat()])
    with sessions(app)() as session:
        assert session.scalar(select(func.count()).select_from(JobRun).where(JobRun.job == "daily_generation")) == 0
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "job.slot_rerun")).one()
        assert audit.actor == "operator:olga" and audit.details["previous_status"] == "failed"
    again = client.post("/admin/operations/rerun", data={**data, "csrf_token": page_token(client)},
                        follow_redirects=True)
    assert "Re-run refused" in again.get_data(as_text=True) and ops.client.llen("dramatiq:legacy") == 1
    ok_slot = {"job": "dispatch_due_posts", "slot": now.replace(second=0, microsecond=0).isoformat(),
               "csrf_token": page_token(client)}
    assert "only a failed or stuck" in client.post("/admin/operations/rerun", data=ok_slot,
                                                   follow_redirects=True).get_data(as_text=True)


def test_dead_letters_requeue_and_purge_from_the_page_are_audited(app: Flask, ops: Ops):
    client = login(app.test_client())
    for post_id in (1, 2):
        ops.send("posting", "publish_post", post_id, "s3cr3t-claim-token-0123456789", "x")
    for raw in ops.client.lrange("dramatiq:posting", 0, -1):  # dead-letter them as Dramatiq's nack does
        ops.client.zadd("dramatiq:posting.XQ", {raw: 1})
        ops.client.hset("dramatiq:posting.XQ.msgs", raw, ops.client.hget("dramatiq:posting.msgs", raw))
        ops.client.hdel("dramatiq:posting.msgs", raw)
    ops.client.delete("dramatiq:posting")
    page = client.get("/admin/operations/").get_data(as_text=True)
    assert "s3cr3t-claim-token" not in page and page.count('"***"') == 2
    assert client.post("/admin/operations/dead/posting/purge", data={}).status_code == 302
    assert ops.client.zcard("dramatiq:posting.XQ") == 2  # no CSRF token: nothing purged
    client.post("/admin/operations/dead/posting/requeue", data={"csrf_token": page_token(client)})
    assert ops.client.zcard("dramatiq:posting.XQ") == 0 and ops.client.llen("dramatiq:posting") == 2
    with sessions(app)() as session:
        row = session.scalars(select(AuditLog).where(AuditLog.action == "dead_letters.requeued")).one()
        assert row.actor == "operator:olga" and row.details["count"] == 2
