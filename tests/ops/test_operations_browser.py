"""The Operations page as a new operator reads it, in Debian's chromium at 1366 px and 375 px.

A real admin over HTTP on PostgreSQL and Redis: three users (one approving every post), a queue
with messages and no consumer, a worker that fell silent, dead letters with long failure texts.
No sideways scrolling at either width; the whole page refreshes (a dead letter added while the
page is open appears in its table); an expired session turns the verdict grey and says so.
Screenshots go to the ``screenshots`` directory (tests/browser.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import update
from werkzeug.serving import make_server

from admin import create_app
from admin.ext import EXTENSION_KEY
from app.models import Operator
from app.operators import create_operator
from app.ops.failures import NOTE_KEY
from app.ops.workers import REGISTRY_KEY
from app.redis_layout import dead_key, dead_messages_key, messages_key, now_ms, queue_key
from tests.browser import BROWSER_OPERATOR, BROWSER_PASSWORD, horizontal_overflow, login, shoot
from tests.ops.seed import seed
from tests.ops.test_success_rate import approval_user, failing_user
from tests.ops_harness import Ops

#: A failure text as long as the ones that made the page 2,000 px wide: one unbroken token.
LONG_FAILURE = ("PermanentError: 403 from https://api.example.test/2/tweets?" + "x" * 400
                + " (at publish.py:120 in publish_posts; x.py:88 in _create)")
#: A phone, in CSS pixels.
PHONE = {"width": 375, "height": 812}
LAPTOP = {"width": 1366, "height": 768}
#: How long the page may take to show a change: one refresh (5 s) and the request's time.
ONE_REFRESH_MS = 9_000


@pytest.fixture
def server(ops: Ops) -> Iterator[tuple[str, Flask]]:
    app = create_app({"SECRET_KEY": "ops-browser-test", "DATABASE_URL": ops.settings.database_url,
                      "AUTOPILOT_SETTINGS": ops.settings, "SESSION_COOKIE_SECURE": False})
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        create_operator(session, BROWSER_OPERATOR, BROWSER_PASSWORD, actor="test")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", app
    httpd.shutdown()
    thread.join(timeout=10)
    app.extensions[EXTENSION_KEY].engine.dispose()


def dead_letter(ops: Ops, queue: str, actor: str, *args: Any, failure: str = LONG_FAILURE) -> None:
    """A message dead-lettered as Dramatiq does it, with the failure note FailureNotes keeps."""
    ops.send(queue, actor, *args)
    raw = ops.client.lpop(queue_key(queue))
    data = ops.client.hget(messages_key(queue), raw)
    ops.client.zadd(dead_key(queue), {raw: now_ms()})
    ops.client.hset(dead_messages_key(queue), raw, data)
    ops.client.hdel(messages_key(queue), raw)
    ops.client.set(NOTE_KEY.format(id=raw.decode()), failure)


def silent_worker(ops: Ops, seconds_ago: int) -> None:
    """A registered worker whose last heartbeat is ``seconds_ago`` old (killed, never deregistered)."""
    broker_id = "dead-worker-1"
    ops.client.hset(REGISTRY_KEY, broker_id, json.dumps({
        "host": "worker-host-1", "pid": 4242, "queues": ["autonomous", "metrics"], "threads": 4,
        "started_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}))
    ops.client.zadd("dramatiq:__heartbeats__", {broker_id: now_ms() - seconds_ago * 1000})


def test_the_page_fits_both_widths_refreshes_whole_and_shows_a_stale_verdict(
        browser: Any, server: tuple[str, Flask], ops: Ops, screenshots: Path) -> None:
    base, app = server
    now = datetime.now(UTC)
    seed(app, now)
    approval_user(app, now)
    failing_user(app, now, published=3, failed=1)
    ops.send("reports", "weekly_report_for_user", 1)  # work, and no worker on reports
    silent_worker(ops, seconds_ago=40)
    dead_letter(ops, "posting", "publish_posts", [101], "token-not-shown", now.isoformat())

    context = browser.new_context(viewport=LAPTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    login(page, base)
    page.goto(f"{base}/admin/operations/")
    page.evaluate("window.__sameDocument = true")

    assert horizontal_overflow(page) == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    # A queue with messages and no consumer is marked; the silent worker is dead, with its last beat.
    assert "ops-orphaned" in (page.get_attribute("#ops-queues tr[data-queue=reports]", "class") or "")
    assert "no worker" in page.inner_text("#ops-queues tr[data-queue=reports]")
    dead = page.inner_text("#ops-workers tr.ops-worker-dead")
    assert "dead" in dead and "worker-host-1" in dead and "s ago" in dead
    assert page.inner_text("#live-workers") == "0"
    # The jobs table counts running work, and publishing is named as on every page.
    assert "running" in page.eval_on_selector_all("#ops-jobs thead th", "ths => ths.map(t => t.textContent)")
    assert page.locator("#ops-jobs tr[data-job=publishing]").count() == 1
    assert page.inner_text("#job-publishing-failed") == "1"  # the approval user's posts are not failures
    assert page.inner_text(".dead-letters[data-queue=posting] td[data-label=work]").startswith("publishing")
    # The menu says how many problems there are, on this page and on the dashboard.
    problems = page.locator("#ops-problems li").count()
    assert problems >= 3  # no_worker, dead_letters, success_rate
    expect(page.locator("#ops-menu-count")).to_have_text(f"{problems} problems")
    shoot(page, screenshots, "operations-1366")

    # A dead letter added while the page is open appears in its table within one refresh.
    assert page.locator(".dead-letters[data-queue=posting] tbody tr").count() == 1
    dead_letter(ops, "posting", "publish_posts", [102], "token-not-shown", now.isoformat(),
                failure="TemporaryError: " + "y" * 300)
    expect(page.locator(".dead-letters[data-queue=posting] tbody tr")).to_have_count(2, timeout=ONE_REFRESH_MS)
    assert page.inner_text("#dead-posting-count") == "2"
    assert page.evaluate("window.__sameDocument") is True
    assert horizontal_overflow(page) == 0

    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(f"{base}/admin/operations/")
    assert horizontal_overflow(phone) == 0
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(phone, screenshots, "operations-375")
    # The parts worth a look at phone size, each as the phone's screen shows it.
    phone.screenshot(path=str(screenshots / "operations-375-top.png"))
    phone.locator(".dead-letters").first.screenshot(path=str(screenshots / "operations-375-dead-letters.png"))
    phone.locator("#ops-charts").screenshot(path=str(screenshots / "operations-375-charts.png"))
    phone.close()

    dashboard = context.new_page()
    dashboard.goto(f"{base}/admin/")
    expect(dashboard.locator("#ops-menu-count")).to_have_text(f"{problems} problems")
    dashboard.close()

    # The session ends (a logout elsewhere bumps the operator's session generation).
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        session.execute(update(Operator).where(Operator.username == BROWSER_OPERATOR)
                        .values(session_generation=Operator.session_generation + 1))
    expect(page.locator("#ops")).to_have_attribute("data-stale", "expired", timeout=ONE_REFRESH_MS)
    assert "alert-secondary" in (page.get_attribute("#ops-status", "class") or "")
    assert "stale since" in page.inner_text("#ops-stale")
    assert "session has expired" in page.inner_text("#ops-refresh-error")
    assert page.locator("#ops-stale a").inner_text() == "Sign in again"
    assert page.evaluate("getComputedStyle(document.getElementById('ops-status')).backgroundColor") \
        == "rgb(226, 227, 229)"  # grey, whatever the last verdict's colour was
    shoot(page, screenshots, "operations-stale-1366")
    context.close()
