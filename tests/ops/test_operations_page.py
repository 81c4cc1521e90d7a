"""The Operations page in a real browser (Debian's chromium driven by Playwright).

A real admin server, a real ``dramatiq`` worker process and real Redis and PostgreSQL: the page
must show the CLI's numbers, update them without a reload when messages arrive, and draw its
charts from the rows in the database. Screenshots are written to ``AUTOPILOT_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import expect
from werkzeug.serving import make_server

from admin import create_app
from admin.auth import create_operator
from admin.ext import EXTENSION_KEY
from tests.ops.seed import seed_history
from tests.ops_harness import Ops
from tests.workers import wait_for

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
#: Bars Chart.js drew with a height, and points it drew on any line, of the chart with this id.
BARS = "id => Chart.getChart(id).data.datasets[0].data.filter(p => p.y > 0).length"
DRAWN = "id => Chart.getChart(id).data.datasets.flatMap(d => d.data).filter(p => p.y !== null).length"


@pytest.fixture
def server(ops: Ops) -> Iterator[tuple[str, Flask]]:
    app = create_app({"SECRET_KEY": "browser-test", "DATABASE_URL": ops.settings.database_url,
                      "AUTOPILOT_SETTINGS": ops.settings})
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        create_operator(session, "olga", PASSWORD)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", app
    httpd.shutdown()
    app.extensions[EXTENSION_KEY].engine.dispose()


def shoot(page, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("AUTOPILOT_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["AUTOPILOT_SCREENSHOT_DIR"]) / name)


def test_the_page_shows_the_cli_numbers_live_and_charts_real_data(browser, server, ops: Ops, tmp_path: Path):
    base, app = server
    now = datetime.now(UTC)
    written = seed_history(app, now)
    ops.tick(now)
    worker = ops.start_worker("posting", processes=1, threads=2)
    assert wait_for(lambda: len([w for w in ops.json("workers")["workers"] if w["alive"]]) == 1, 30), worker.stderr()
    for i in range(3):
        ops.send("reports", "weekly_report_for_user", i)
    for i in range(2):
        ops.send("posting", "publish_post", i, "token", None, delay=600_000)
    assert wait_for(lambda: ops.client.llen("dramatiq:posting.DQ") == 0, 10)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{base}/admin/operations/")
    page.evaluate("window.__sameDocument = true")

    cli = {q["queue"]: q for q in ops.json("queues")}
    assert (cli["reports"]["waiting"], cli["posting"]["delayed"]) == (3, 2)
    for queue, row in cli.items():
        for field in ("waiting", "in_flight", "delayed", "dead"):
            assert page.inner_text(f"#q-{queue}-{field}") == str(row[field]), (queue, field)
    assert page.inner_text("#live-workers") == "1"
    assert page.inner_text("#q-posting-workers") == "1" and page.inner_text("#q-reports-workers") == "0"
    problems = page.eval_on_selector_all("#ops-problems li", "els => els.map(e => e.dataset.code)")
    assert "no_worker" in problems  # reports has work and no worker

    # Charts drawn from the database rows: every chart has points, the bars count the posts.
    for chart in ("published", "lateness", "success", "depth"):
        points = int(page.get_attribute(f"#chart-{chart}-24h", "data-points"))
        assert points > 0, chart
    page.wait_for_selector("#chart-depth-24h[data-drawn='1']")
    bars = page.evaluate(BARS, "chart-published-24h")
    assert 0 < bars <= written["published_24h"]
    assert page.evaluate(DRAWN, "chart-depth-24h") >= 1
    shoot(page, tmp_path, "operations-24h.png")

    # New messages appear without a reload: the script refreshes from data.json.
    for i in range(4):
        ops.send("reports", "weekly_report_for_user", 10 + i)
    # expect() polls from Python: wait_for_function() would eval a string, which the CSP forbids.
    expect(page.locator("#q-reports-waiting")).to_have_text("7", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.inner_text("#q-reports-waiting") == str(ops.json("queues")[1]["waiting"])

    worker.stop()
    expect(page.locator("#live-workers")).to_have_text("0", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    shoot(page, tmp_path, "operations-live.png")

    page.goto(f"{base}/admin/operations/?range=7d")
    assert int(page.get_attribute("#chart-published-7d", "data-points")) == 168
    page.wait_for_selector("#chart-published-7d[data-drawn='1']")
    assert page.evaluate(BARS, "chart-published-7d") == 7 * 8 - 1
    shoot(page, tmp_path, "operations-7d.png")
