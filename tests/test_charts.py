"""Chart specs and tables (app/charts): what the browser is told to draw, and the numbers beside it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from app.charts import category_chart, grid_chart, time_chart

START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
END = START + timedelta(hours=24)


def spec_of(html: str) -> dict:  # type: ignore[type-arg]
    match = re.search(r'data-chart="([^"]+)"', html)
    assert match
    return json.loads(match.group(1).replace("&#34;", '"').replace("&quot;", '"'))


def test_time_charts_of_one_range_share_their_axis_and_say_utc() -> None:
    hourly = {"posts": [(START + timedelta(hours=h), float(h % 3)) for h in range(24)]}
    ten_minutes = {"posting": [(START + timedelta(minutes=10 * m), 1.0) for m in range(144)]}
    a = time_chart("a", "Published", hourly, start=START, end=END, kind="bar")
    b = time_chart("b", "Depth", ten_minutes, start=START, end=END)
    assert (a.spec["x"]["min"], a.spec["x"]["max"]) == (b.spec["x"]["min"], b.spec["x"]["max"])
    assert a.spec["x"]["title"] == b.spec["x"]["title"] == "Time (UTC)"
    assert a.rows[0][0] == "2026-11-26 06:00 UTC"


def test_bars_sit_mid_bucket_inside_the_axis() -> None:
    series = {"posts": [(START + timedelta(hours=h), 1.0) for h in range(24)]}
    spec = time_chart("a", "Published", series, start=START, end=END, kind="bar").spec
    xs = [x for x, _ in spec["series"][0]["points"]]
    half_hour_ms = 30 * 60 * 1000
    assert xs[0] == spec["x"]["min"] + half_hour_ms and xs[-1] == spec["x"]["max"] - half_hour_ms


def test_tables_write_counts_whole_and_rates_as_percentages_and_gaps_as_dashes() -> None:
    chart = category_chart("w", "Weekly", ["16 Nov", "23 Nov"], {"X": [0.0123, None]}, unit="rate",
                           links={0: "/dashboard/posts?since=a"})
    assert [list(r) for r in chart.rows] == [["16 Nov", "1.2%"], ["23 Nov", "-"]]
    html = str(chart.render())
    assert '<a href="/dashboard/posts?since=a">16 Nov</a>' in html and 'data-points="1"' in html
    assert "<caption>Weekly</caption>" in html and 'role="img"' in html
    counts = time_chart("c", "Depth", {"q": [(START, 3.0)]}, start=START, end=END, unit="count")
    assert counts.rows[0][1] == "3" and counts.spec["unit"] == "count"
    # An average (interactions per post) keeps one decimal, whole or not: 40.0 beside 40.7.
    averages = category_chart("a", "Per post", ["16 Nov", "23 Nov"], {"X": [40.0, 1234.5678]}, unit="average")
    assert [r[1] for r in averages.rows] == ["40.0", "1,234.6"]


def test_grid_cells_are_scaled_to_the_largest_and_listed_in_order() -> None:
    chart = grid_chart("h", "Heatmap", {(1, 9): 0.02, (0, 17): 0.04}, row_labels=["Mon", "Tue"],
                       column_labels=[f"{h:02d}" for h in range(24)], counts={(1, 9): 2, (0, 17): 3})
    assert [c["share"] for c in chart.spec["series"][0]["cells"]] == [1.0, 0.5]
    assert [list(r) for r in chart.rows] == [["Mon", "17", "4.0%", "3"], ["Tue", "09", "2.0%", "2"]]


def test_unknown_units_and_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown chart unit 'bananas'"):
        time_chart("x", "X", {}, start=START, end=END, unit="bananas")
    with pytest.raises(ValueError, match="unknown chart kind 'pie'"):
        category_chart("x", "X", [], {}, kind="pie")
