"""Weekly reports: the ``insight`` memory entries the weekly workflow writes, rendered readably.

A report's ``content`` is a dict whose shape may grow; the known keys ("summary",
"recommendations") get their own layout and everything else is shown as JSON, so a new key
is visible at once instead of silently dropped.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from admin.base import ReadOnlyModelView, json_block
from app.models import MemoryEntry

#: The memory kind holding weekly reports.
REPORT_KIND = "insight"
#: Characters of a report's summary shown in the list.
SUMMARY_PREVIEW = 160


def render_report(content: Any) -> Markup:
    """HTML for a report dict: summary paragraph, recommendations list, the rest as JSON."""
    if not isinstance(content, dict):
        return json_block(content)
    rest = dict(content)
    parts: list[Markup] = []
    summary = rest.pop("summary", None)
    if summary is not None:
        parts.append(Markup('<h6>Summary</h6><p class="report-summary">{}</p>').format(summary))
    recommendations = rest.pop("recommendations", None)
    if isinstance(recommendations, list):
        items = Markup("").join(Markup("<li>{}</li>").format(r) for r in recommendations)
        parts.append(Markup('<h6>Recommendations</h6><ul class="report-recommendations">{}</ul>').format(items))
    elif recommendations is not None:
        rest["recommendations"] = recommendations
    if rest:
        parts.append(Markup("<h6>Details</h6>") + json_block(rest))
    return Markup('<div class="weekly-report">{}</div>').format(Markup("").join(parts))


def _summary(view: Any, context: Any, model: MemoryEntry, name: str) -> str:
    content = model.content if isinstance(model.content, dict) else {}
    summary = str(content.get("summary", ""))
    return summary if len(summary) <= SUMMARY_PREVIEW else summary[: SUMMARY_PREVIEW - 1] + "…"


class WeeklyReportView(ReadOnlyModelView):
    """``/admin/reports/``: newest first; open a report's details to read it whole."""

    column_list = ("id", "user_id", "key", "created_at", "summary")
    column_details_list = ("id", "user_id", "key", "created_at", "content")
    column_sortable_list = ("id", "user_id", "created_at")
    column_default_sort = ("created_at", True)
    column_filters = ("user_id", "key")
    column_formatters = {"summary": _summary}
    column_formatters_detail = {"content": lambda v, c, m, n: render_report(m.content)}

    def get_query(self) -> Any:
        return super().get_query().filter(MemoryEntry.kind == REPORT_KIND)

    def get_count_query(self) -> Any:
        return super().get_count_query().filter(MemoryEntry.kind == REPORT_KIND)

    def get_one(self, id: Any) -> MemoryEntry | None:
        entry = super().get_one(id)
        return entry if entry is not None and entry.kind == REPORT_KIND else None
