"""The Operations page's charts in a real browser: one UTC axis, whole counts, nothing clipped.

What an operator saw wrong in the hand-drawn charts, checked on the drawn Chart.js charts
through Chart.js's own objects: time axes that differed between charts and did not say UTC,
fractional message counts on a count axis, a clipped last label on the 7-day axis, bars past
the axis, no values on hover. No worker is needed: the page reads the database and Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from admin import create_app
from admin.auth import create_operator
from admin.ext import EXTENSION_KEY
from tests.browser import login
from tests.ops.seed import seed_history
from tests.ops_harness import Ops

CHARTS = ("published", "lateness", "success", "depth")


@pytest.fixture
def base_url(ops: Ops) -> Iterator[str]:
    app = create_app({"SECRET_KEY": "chart-test", "DATABASE_URL": ops.settings.database_url,
                      "REDIS_URL": ops.settings.redis_url, "SESSION_COOKIE_SECURE": False})
    with app.extensions[EXTENSION_KEY].session_factory() as session, session.begin():
        create_operator(session, "olivia", "a long browser password")
    seed_history(app, datetime.now(UTC))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    app.extensions[EXTENSION_KEY].engine.dispose()


AXES = """ids => ids.map(id => {
  const chart = Chart.getChart(id);
  const x = chart.scales.x, y = chart.scales.y, area = chart.chartArea;
  const bars = chart.config.type === "bar" ? chart.getDatasetMeta(0).data.map(b => {
    const p = b.getProps(["x", "width"], true); return [p.x - p.width / 2, p.x + p.width / 2]; }) : [];
  const last = x._labelItems ? x._labelItems[x._labelItems.length - 1] : null;
  chart.ctx.font = x._resolveTickFontOptions(0).string;
  return {id, min: x.min, max: x.max, title: x.options.title.text, yTicks: y.ticks.map(t => t.value),
          area: [area.left, area.right], width: chart.width, bars,
          lastLabel: last ? {x: last.options.translation[0], text: String(last.label),
                             width: chart.ctx.measureText(String(last.label)).width} : null};
})"""


def hovered(page: Any, chart_id: str) -> dict[str, Any]:
    """The chart's tooltip once shown (Chart.js handles pointer events on an animation frame;
    polled from Python: the page's CSP forbids the string eval wait_for_function needs)."""
    for _ in range(50):
        tooltip = page.evaluate("""id => { const t = Chart.getChart(id).tooltip;
            return {opacity: t.opacity, title: t.title || [], body: (t.body || []).map(b => b.lines.join(" "))}; }""",
                                chart_id)
        if tooltip["body"]:
            return tooltip
        page.wait_for_timeout(50)
    raise AssertionError(f"no tooltip on {chart_id}")


@pytest.mark.parametrize(("range_name", "width"), [("24h", 1366), ("7d", 1366), ("7d", 375)])
def test_operations_charts_share_a_utc_axis_whole_counts_and_nothing_clipped(
        browser: Any, base_url: str, screenshots: Path, range_name: str, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        login(page, base_url)
        page.goto(f"{base_url}/admin/operations/?range={range_name}")
        ids = [f"chart-{name}-{range_name}" for name in CHARTS]
        page.wait_for_selector(f"#{ids[-1]}[data-drawn='1']")
        axes = page.evaluate(AXES, ids)
        # One axis for every chart of the range, in UTC and saying so.
        assert len({(a["min"], a["max"]) for a in axes}) == 1
        assert {a["title"] for a in axes} == {"Time (UTC)"}
        # Counts (posts per hour, queue depth) tick in whole numbers only.
        for a in axes:
            if a["id"].startswith(("chart-published", "chart-depth")):
                assert a["yTicks"] and all(float(v).is_integer() for v in a["yTicks"]), a
        # Bars stay inside the plot; the last time label fits in the canvas.
        published = axes[0]
        assert published["bars"], "no bars drawn"
        left, right = published["area"]
        assert all(left - 0.5 <= b[0] and b[1] <= right + 0.5 for b in published["bars"]), published
        for a in axes:
            label = a["lastLabel"]
            assert label and label["x"] + label["width"] / 2 <= a["width"], a
        # A value on hover: the tooltip names the UTC instant and the count.
        x_bar = page.evaluate("""id => { const c = Chart.getChart(id); const bars = c.getDatasetMeta(0).data;
            const i = c.data.datasets[0].data.findIndex(p => p.y > 0); return [bars[i].x, bars[i].y + 2]; }""", ids[0])
        page.locator(f"#{ids[0]}").hover(position={"x": x_bar[0], "y": x_bar[1]})
        tooltip = hovered(page, ids[0])
        assert tooltip["opacity"] > 0 and tooltip["title"][0].endswith("UTC"), tooltip
        assert tooltip["body"][0].startswith("posts: "), tooltip
        # The numbers are on the page too, as a table (folded away on this dense page).
        assert page.locator(f"#{ids[0]}-table tbody tr").count() > 0
        page.locator("#ops-charts").screenshot(path=str(screenshots / f"operations-charts-{range_name}-{width}.png"))
    finally:
        page.close()
