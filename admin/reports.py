"""Weekly reports: the ``insight`` memory entries the weekly workflow writes, rendered as a report.

A report's ``content`` (see :meth:`app.report_math.WeeklyReport.as_content`) is shown as a
report: the summary, the figures (posts, runs, engagement by platform), the top and bottom
posts, and the recommendations. Keys this page does not know are shown as JSON, so a new key
is visible at once instead of silently dropped. A report built on the sandbox publisher's
posts or on simulated metrics is labelled "simulated": nobody should read its numbers as
real engagement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import g, url_for
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.base import ReadOnlyModelView, json_block, short
from app.models import MemoryEntry, MetricSnapshot, Post
from app.platforms import display_name, reports_impressions
from app.providers.sandbox import is_sandbox_id

#: The memory kind holding weekly reports.
REPORT_KIND = "insight"
#: Characters of a report's summary shown in the list.
SUMMARY_PREVIEW = 110
#: Keys of a report's content laid out by :func:`render_report` (the rest is shown as JSON).
KNOWN_KEYS = ("summary", "period", "posts", "executions", "top", "bottom", "top_by_interactions",
              "bottom_by_interactions", "by_platform", "recommendations")
#: The ranked lists: by engagement rate, then (platforms without impressions) by interactions.
RANKED_KEYS = ("top", "bottom", "top_by_interactions", "bottom_by_interactions")

_SIMULATED_BADGE = Markup('<span class="badge badge-secondary simulated">simulated</span>')


def ranked_post_ids(content: Any) -> set[int]:
    """Ids of the posts a report ranks (top and bottom, by rate and by interactions)."""
    if not isinstance(content, dict):
        return set()
    ids = set()
    for key in RANKED_KEYS:
        for entry in content.get(key) or []:
            if isinstance(entry, dict) and isinstance(entry.get("post_id"), int):
                ids.add(entry["post_id"])
    return ids


def simulated_posts(session: Session, post_ids: Iterable[int]) -> set[int]:
    """Which of ``post_ids`` went out through the sandbox or have simulated metrics (one query each)."""
    ids = set(post_ids)
    if not ids:
        return set()
    sandbox = {pid for pid, ext in session.execute(select(Post.id, Post.external_id).where(Post.id.in_(ids)))
               if is_sandbox_id(ext or "")}
    measured = set(session.scalars(
        select(MetricSnapshot.post_id).where(MetricSnapshot.post_id.in_(ids), MetricSnapshot.simulated.is_(True))
    ))
    return sandbox | measured


def _table(rows: Iterable[tuple[Any, Any]], css: str) -> Markup:
    body = Markup("").join(Markup("<tr><th>{}</th><td>{}</td></tr>").format(str(k).replace("_", " "), v)
                           for k, v in rows)
    return Markup('<table class="table table-sm {}">{}</table>').format(css, body)


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


def _ranked(entries: Any, title: str, css: str) -> Markup:
    if not entries:
        return Markup("<h6>{}</h6><p class=\"text-muted\">None measured.</p>").format(title)
    rows = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        pid = entry.get("post_id")
        link = Markup('<a href="{}">{}</a>').format(url_for("posts.details_view", id=pid), pid) if pid else ""
        rows.append(Markup("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
            link, entry.get("platform", ""), short(entry.get("excerpt", ""), 80),
            entry.get("impressions", ""), entry.get("interactions", ""), _pct(entry.get("engagement_rate"))))
    head = Markup("<tr><th>Post</th><th>Platform</th><th>Excerpt</th><th>Impressions</th>"
                  "<th>Interactions</th><th>Engagement</th></tr>")
    return Markup('<h6>{}</h6><table class="table table-sm {}"><thead>{}</thead><tbody>{}</tbody></table>').format(
        title, css, head, Markup("").join(rows))


def render_report(content: Any, *, simulated: bool = False) -> Markup:
    """HTML for a report dict: summary, figures, top and bottom posts, recommendations, the rest as JSON."""
    if not isinstance(content, dict):
        return json_block(content)
    parts: list[Markup] = []
    if simulated:
        parts.append(Markup('<p class="alert alert-secondary">{} Built on the sandbox publisher or simulated '
                            "metrics: these figures are not real engagement.</p>").format(_SIMULATED_BADGE))
    if content.get("summary") is not None:
        parts.append(Markup('<h6>Summary</h6><p class="report-summary">{}</p>').format(content["summary"]))
    period = content.get("period")
    if isinstance(period, dict):
        parts.append(Markup("<p>Period: {} to {} (UTC)</p>").format(
            str(period.get("start", ""))[:16].replace("T", " "), str(period.get("end", ""))[:16].replace("T", " ")))
    figures = []
    if isinstance(content.get("posts"), dict):
        figures.append(Markup("<div class=\"col-md-4\"><h6>Posts</h6>{}</div>").format(
            _table(content["posts"].items(), "report-posts")))
    if isinstance(content.get("executions"), dict):
        runs = [(k, _pct(v) if k.endswith("rate") else v) for k, v in content["executions"].items()
                if not isinstance(v, dict | list)]
        figures.append(Markup("<div class=\"col-md-4\"><h6>Workflow runs</h6>{}</div>").format(
            _table(runs, "report-executions")))
    if isinstance(content.get("by_platform"), dict):
        rows = [(display_name(platform), Markup("{} measured, {} interactions, engagement {}").format(
                    stats.get("posts", stats.get("published", "-")), stats.get("interactions", "-"),
                    _pct(stats.get("engagement_rate")) if reports_impressions(platform) else "not reported"))
                for platform, stats in content["by_platform"].items() if isinstance(stats, dict)]
        figures.append(Markup("<div class=\"col-md-4\"><h6>By platform</h6>{}</div>").format(
            _table(rows, "report-platforms")))
    if figures:
        parts.append(Markup('<div class="row">{}</div>').format(Markup("").join(figures)))
    if "top" in content:
        parts.append(_ranked(content.get("top"), "Top posts", "report-top"))
    if "bottom" in content:
        parts.append(_ranked(content.get("bottom"), "Bottom posts", "report-bottom"))
    if content.get("top_by_interactions"):
        parts.append(_ranked(content["top_by_interactions"], "Most interactions (no impressions reported)",
                             "report-top-interactions"))
        parts.append(_ranked(content.get("bottom_by_interactions"), "Fewest interactions (no impressions reported)",
                             "report-bottom-interactions"))
    recommendations = content.get("recommendations")
    rest = {k: v for k, v in content.items() if k not in KNOWN_KEYS}
    if isinstance(recommendations, list):
        items = Markup("").join(Markup("<li>{}</li>").format(r) for r in recommendations)
        parts.append(Markup('<h6>Recommendations</h6><ul class="report-recommendations">{}</ul>').format(items))
    elif recommendations is not None:
        rest["recommendations"] = recommendations
    if rest:
        parts.append(Markup("<details><summary>More figures</summary>{}</details>").format(json_block(rest)))
    return Markup('<div class="weekly-report">{}</div>').format(Markup("").join(parts))


def _summary(view: Any, context: Any, model: MemoryEntry, name: str) -> Markup | str:
    content = model.content if isinstance(model.content, dict) else {}
    summary = short(str(content.get("summary", "")), SUMMARY_PREVIEW)
    if view.is_simulated(model):
        return Markup("{} {}").format(_SIMULATED_BADGE, summary)
    return summary


def _user(view: Any, context: Any, model: MemoryEntry, name: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for("users.details_view", id=model.user_id), model.user.email)


class WeeklyReportView(ReadOnlyModelView):
    """``/admin/reports/``: newest first; open a report's details to read it whole."""

    column_list = ("id", "user", "key", "created_at", "summary")
    column_details_list = ("id", "user", "key", "created_at", "content")
    column_labels = {"key": "Week", "content": "Report", "created_at": "Written", "user.email": "User email"}
    column_sortable_list = ("id", "created_at", "key")
    column_default_sort = ("created_at", True)
    column_filters = ("user.email", "key")
    column_formatters = {"summary": _summary, "user": _user}
    column_formatters_detail = {
        "user": _user,
        "content": lambda v, c, m, n: render_report(m.content, simulated=v.is_simulated(m)),
    }

    def get_query(self) -> Any:
        return super().get_query().filter(MemoryEntry.kind == REPORT_KIND)

    def get_count_query(self) -> Any:
        return super().get_count_query().filter(MemoryEntry.kind == REPORT_KIND)

    def get_one(self, id: Any) -> MemoryEntry | None:
        entry = super().get_one(id)
        return entry if entry is not None and entry.kind == REPORT_KIND else None

    def get_list(self, *args: Any, **kwargs: Any) -> Any:
        """The page's reports, and which of their ranked posts are simulated (two queries in all)."""
        count, entries = super().get_list(*args, **kwargs)
        entries = list(entries)
        # On g, not on the view: one view instance serves every request and thread.
        g.simulated_report_posts = simulated_posts(
            self.session, set().union(*(ranked_post_ids(e.content) for e in entries)))
        return count, entries

    def is_simulated(self, entry: MemoryEntry) -> bool:
        """Whether any post the report ranks was published by the sandbox or measured by simulation."""
        ids = ranked_post_ids(entry.content)
        known = g.get("simulated_report_posts")
        if known is None:  # the details page: ask for this report alone
            known = simulated_posts(self.session, ids)
        return bool(ids & known)
