"""Charts, one way for the admin and the portal: a spec here, drawn by Chart.js in the browser.

Chart.js 4 (MIT, vendored in ``static/`` with its licence: no CDN) draws on a ``<canvas>``, is
CSP-compatible (no inline script or style: the page loads it and ``autopilot-charts.js`` from
``'self'``), shows each value on hover and keeps bars and labels inside the plot. Python
builds a small spec per chart (:class:`ChartView`); ``autopilot-charts.js`` is the one place
that turns a spec into Chart.js options, so every chart shares its axes' rules:

- a **time axis** is in UTC and says so, spans exactly the range asked for (so two charts of
  the same range have the same axis, whatever their bucket widths) and labels whole hours or
  days;
- a **count axis** has whole-number ticks only (no 1.25 messages);
- bars sit in the middle of their bucket, inside the axis.

Every chart renders with its numbers beside it as a table (:meth:`ChartView.render`): the
accessible reading, and what a page without JavaScript still shows. ``data-points`` on the
canvas counts the non-empty values, so a test can tell an empty chart from a drawn one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from app.errors import InvalidValue

#: One colour per series, in order (Okabe-Ito, colour-blind-safe).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
#: The units a value axis knows: how ticks, tooltips and table cells are written.
#: "average" is a number per something (interactions per post), always with one decimal.
UNITS = ("count", "number", "average", "percent", "rate", "ms")
#: The static files a page includes, in this order (see :func:`assets_blueprint`).
SCRIPTS = ("chart.umd.min.js", "autopilot-charts.js")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Tick steps of a time axis, by the longest span they suit.
_TIME_STEPS = ((timedelta(hours=2), timedelta(minutes=15)), (timedelta(hours=26), timedelta(hours=3)),
               (timedelta(days=8), timedelta(days=1)), (timedelta.max, timedelta(days=7)))


@dataclass(frozen=True)
class ChartView:
    """One chart: its spec for ``autopilot-charts.js`` and the table of its numbers."""

    chart_id: str
    title: str
    spec: dict[str, Any]
    #: The table beside the chart: column headings, then one row of cells per line.
    headings: Sequence[str]
    rows: Sequence[Sequence[str]]
    points: int
    #: Words under the title (e.g. what a figure counts), optional.
    note: str = ""
    #: Cells of the first column that link somewhere (row index -> URL), e.g. the posts counted.
    links: Mapping[int, str] = field(default_factory=dict)

    def render(self, *, table: str = "beside") -> Markup:
        """The chart and its table. ``table="details"`` folds the table away (the admin's
        dense pages); ``"beside"`` shows it next to the chart (the portal)."""
        # Plain strings with escape() (C-accelerated): a 90-day table is hundreds of cells.
        caption = str(escape(self.title))
        head = "".join(f'<th scope="col">{escape(h)}</th>' for h in self.headings)
        body = []
        for index, row in enumerate(self.rows):
            first = (f'<a href="{escape(self.links[index])}">{escape(row[0])}</a>' if index in self.links
                     else str(escape(row[0])))
            cells = "".join(f"<td>{escape(c)}</td>" for c in row[1:])
            body.append(f'<tr><th scope="row">{first}</th>{cells}</tr>')
        grid = (f'<table class="chart-table" id="{escape(self.chart_id)}-table"><caption>{caption}</caption>'
                f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
        if table == "details":
            grid = f'<details class="chart-numbers"><summary>Numbers</summary>{grid}</details>'
        note = f'<p class="chart-note">{escape(self.note)}</p>' if self.note else ""
        spec = escape(json.dumps(self.spec, separators=(",", ":")))
        canvas = (f'<div class="chart-canvas"><canvas id="{escape(self.chart_id)}" role="img" aria-label="{caption}: '
                  f'the numbers are in the table beside it" data-points="{self.points}" data-chart="{spec}">'
                  "</canvas></div>")
        return Markup(f'<figure class="chart chart-{escape(table)}"><figcaption>{caption}</figcaption>'
                      f"{note}{canvas}{grid}</figure>")

    def __html__(self) -> str:
        return str(self.render())


def time_chart(chart_id: str, title: str, series: Mapping[str, Sequence[tuple[datetime, float | None]]], *,
               start: datetime, end: datetime, unit: str = "count", kind: str = "line",
               y_max: float | None = None, bucket: timedelta | None = None) -> ChartView:
    """Series of (bucket start, value) on a UTC time axis spanning exactly [start, end].

    Two charts given the same ``start`` and ``end`` have the same axis. ``bucket`` (the width of
    a point's bucket; default: the gap between the first two points) puts bars in the middle
    of their bucket, so none reaches past the axis. None values leave a gap.
    """
    _check(unit, kind)
    width = bucket or _bucket(series)
    offset = width / 2 if kind == "bar" and width else timedelta(0)
    step = next(step for longest, step in _TIME_STEPS if end - start <= longest)
    datasets = [{"label": name, "color": PALETTE[i % len(PALETTE)],
                 "points": [[_ms(at + offset), value] for at, value in points]}
                for i, (name, points) in enumerate(series.items())]
    instants = sorted({at for points in series.values() for at, _ in points})
    names = list(series)
    lookup = {name: dict(points) for name, points in series.items()}
    rows = [[f"{at:%Y-%m-%d %H:%M} UTC", *(_format(lookup[n].get(at), unit) for n in names)] for at in instants]
    spec = {"kind": kind, "unit": unit, "yMax": y_max,
            "x": {"type": "time", "min": _ms(start), "max": _ms(end), "step": _ms_delta(step),
                  "title": "Time (UTC)"},
            "series": datasets}
    return ChartView(chart_id, title, spec, ["Time (UTC)", *names], rows, _points(series))


def category_chart(chart_id: str, title: str, labels: Sequence[str],
                   series: Mapping[str, Sequence[float | None]], *, unit: str = "count", kind: str = "line",
                   x_title: str = "", links: Mapping[int, str] | None = None, note: str = "") -> ChartView:
    """Series over named categories (weeks, platforms): one value per label, None for a gap."""
    _check(unit, kind)
    names = list(series)
    datasets = [{"label": name, "color": PALETTE[i % len(PALETTE)], "values": list(values)}
                for i, (name, values) in enumerate(series.items())]
    rows = [[label, *(_format(series[n][i], unit) for n in names)] for i, label in enumerate(labels)]
    spec = {"kind": kind, "unit": unit, "x": {"type": "category", "labels": list(labels), "title": x_title},
            "series": datasets}
    count = sum(1 for values in series.values() for v in values if v is not None)
    return ChartView(chart_id, title, spec, [x_title or "", *names], rows, count, note, dict(links or {}))


def grid_chart(chart_id: str, title: str, cells: Mapping[tuple[int, int], float], *, row_labels: Sequence[str],
               column_labels: Sequence[str], unit: str = "rate", counts: Mapping[tuple[int, int], int] | None = None,
               x_title: str = "", note: str = "") -> ChartView:
    """A heatmap of (row, column) cells drawn as a punch card: the larger and darker a dot, the
    higher its value. The table lists the non-empty cells (row, column, value, posts)."""
    _check(unit, "bubble")
    top = max(cells.values(), default=0) or 1
    points = [{"x": column, "y": row, "v": value, "share": value / top, "n": (counts or {}).get((row, column))}
              for (row, column), value in sorted(cells.items())]
    spec = {"kind": "bubble", "unit": unit,
            "x": {"type": "grid", "labels": list(column_labels), "title": x_title},
            "y": {"labels": list(row_labels)},
            "series": [{"label": title, "color": PALETTE[0], "cells": points}]}
    headings = ["Day", "Hour", "Value", "Posts"] if counts is not None else ["Day", "Hour", "Value"]
    rows = [[row_labels[row], column_labels[column], _format(value, unit),
             *([str(counts.get((row, column), 0))] if counts is not None else [])]
            for (row, column), value in sorted(cells.items())]
    return ChartView(chart_id, title, spec, headings, rows, len(points), note)


def assets_blueprint(name: str = "charts") -> Any:
    """A blueprint serving Chart.js and ``autopilot-charts.js`` at ``/chart-assets/`` (one copy
    for every app); templates include ``url_for('charts.static', filename=...)`` for each of
    :data:`SCRIPTS`."""
    from flask import Blueprint

    return Blueprint(name, __name__, static_folder="static", static_url_path="/chart-assets")


def _check(unit: str, kind: str) -> None:
    if unit not in UNITS:
        raise InvalidValue(f"unknown chart unit {unit!r}; expected one of {', '.join(UNITS)}")
    if kind not in ("line", "bar", "bubble"):
        raise InvalidValue(f"unknown chart kind {kind!r}; expected line or bar")


def _bucket(series: Mapping[str, Sequence[tuple[datetime, float | None]]]) -> timedelta | None:
    for points in series.values():
        if len(points) >= 2:
            return points[1][0] - points[0][0]
    return None


def _points(series: Mapping[str, Sequence[tuple[datetime, float | None]]]) -> int:
    return sum(1 for points in series.values() for _, v in points if v is not None)


def _ms(instant: datetime) -> int:
    return int((instant.astimezone(UTC) - _EPOCH) / timedelta(milliseconds=1))


def _ms_delta(delta: timedelta) -> int:
    return int(delta / timedelta(milliseconds=1))


def format_value(value: float | None, unit: str) -> str:
    """A value as the table and the tooltips write it ("-" for none)."""
    return _format(value, unit)


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "count":
        return f"{round(value):,}"
    if unit == "average":
        return f"{value:,.1f}"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "rate":
        return f"{value:.1%}"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
