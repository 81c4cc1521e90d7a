"""Server-rendered SVG charts: no JavaScript library, no CDN, the same markup in every browser.

A chart is a pure function of its series (``(instant, value or None)`` pairs), so it renders
from real data in tests as on the page. Gaps (None) break the line instead of bridging it.
Each chart carries ``data-points`` (the number of non-empty values it drew) so a test can tell
an empty chart from a drawn one without reading pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

#: Chart size in SVG user units (it scales with the page width).
DEFAULT_WIDTH = 560
DEFAULT_HEIGHT = 230
_MARGIN = (44, 14, 28, 52)  # top (title and legend), right, bottom, left
#: One colour per series, in order (colour-blind-safe palette).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")

Series = Sequence[tuple[datetime, float | None]]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _fmt(value: float, unit: str) -> str:
    if unit == "ms" and value >= 1000:
        return f"{value / 1000:g} s"
    return f"{value:g}{' ' + unit if unit else ''}"


def chart(title: str, series: dict[str, Series], *, unit: str = "", kind: str = "line",
          y_max: float | None = None, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
          chart_id: str = "") -> Markup:
    """An SVG line or bar chart of ``series`` sharing one time axis."""
    top, right, bottom, left = _MARGIN
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [t for s in series.values() for t, _ in s]
    values = [v for s in series.values() for _, v in s if v is not None]
    top_value = y_max if y_max is not None else _nice_max(max(values, default=0))
    start, end = (min(times), max(times)) if times else (None, None)
    span = (end - start).total_seconds() if start and end and end > start else 1.0

    def x(t: datetime) -> float:
        return left + (((t - start).total_seconds() / span) * plot_w if start else 0)

    def y(v: float) -> float:
        return top + plot_h - (min(v, top_value) / top_value) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ops-chart" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}" id="{escape(chart_id)}" data-points="{len(values)}">',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="15" font-size="13" font-weight="bold" fill="#222">{escape(title)}</text>']
    for i in range(5):  # horizontal grid and y labels
        v = top_value * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     'stroke="#ddd" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10" '
                     f'fill="#555">{escape(_fmt(v, unit))}</text>')
    if start and end:
        for i in range(5):  # time labels
            t = start + (end - start) * (i / 4)
            label = t.strftime("%H:%M") if span <= 2 * 86400 else t.strftime("%a %H:%M")
            parts.append(f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="middle" font-size="10" '
                         f'fill="#555">{escape(label)}</text>')
    count = max((len(s) for s in series.values()), default=1)
    bar_w = max(1.0, plot_w / max(count, 1) * 0.8 / max(len(series), 1))
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        if kind == "bar":
            for t, v in points:
                if v:
                    parts.append(f'<rect x="{x(t) - bar_w / 2 + index * bar_w:.1f}" y="{y(v):.1f}" '
                                 f'width="{bar_w:.1f}" height="{top + plot_h - y(v):.1f}" fill="{colour}">'
                                 f"<title>{escape(name)} {t:%Y-%m-%d %H:%M}: {escape(_fmt(v, unit))}</title></rect>")
        else:
            run: list[str] = []
            for t, v in [*points, (None, None)]:
                if v is None or t is None:
                    if len(run) == 1:
                        cx, cy = run[0].split(",")
                        parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
                    elif run:
                        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                                     f'points="{" ".join(run)}"/>')
                    run = []
                else:
                    run.append(f"{x(t):.1f},{y(v):.1f}")
        parts.append(f'<text x="{left + index * 100}" y="33" font-size="11" fill="{colour}">'
                     f"■ {escape(name)}</text>")
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#888"/>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#888"/>')
    if not values:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
                     'font-size="12" fill="#999">no data in this range</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
