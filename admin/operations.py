"""``/admin/operations/``: queues, workers, scheduler, job runs, dead letters and charts, live.

The page renders from the same functions as ``autopilot check`` (:mod:`app.ops`). A small
script (``static/operations.js``) replaces the whole live part (verdict, queues, workers, jobs,
publishing, failed slots, dead letters) with ``live`` every few seconds, so nothing on the page
is drawn once and left behind, and the charts with ``charts`` every minute: no page reload. A
refresh that fails turns the verdict grey and says since when; an expired session says so.
``data.json`` serves the same figures to machines. Each refresh also records the minute's queue
depth sample if no worker has yet (see :mod:`app.ops.sampling`).

Every admin page shows the number of problems in its navigation bar (:func:`problem_count`,
cached for a few seconds), so an operator on the dashboard knows the Operations page has news.

Actions are CSRF-protected POSTs (Flask-Admin's SecureForm) and leave audit rows: re-run a
failed slot, requeue or purge a queue's dead letters.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    request,
    url_for,
)
from flask_admin import Admin, BaseView, expose
from flask_admin.form import SecureForm
from wtforms import HiddenField
from wtforms.validators import InputRequired

from actors.messages import ACTOR_PARAMETERS, send_manual_run, work_of
from admin.auth import VIEWS_URL_KEY, OperatorRequired, current_actor
from admin.ext import database
from app.charts import time_chart
from app.clock import utcnow
from app.errors import NotFound, ValidationError
from app.ops.actions import act_on_dead_letters, rerun_slot
from app.ops.check import SUCCESS_WINDOW, Thresholds, problems, snapshot_dict, take_snapshot
from app.ops.deadletters import dead_letters
from app.ops.history import RANGES, buckets, charts
from app.ops.sampling import record_sample
from app.ops.stats import failed_slots, last_and_next_runs, publishing_stats
from app.queues import QUEUES

#: Seconds between two refreshes of the figures (the charts refresh every minute).
REFRESH_SECONDS = 5
#: Dead letters listed per queue on the page.
DEAD_LETTERS_SHOWN = 20
#: Seconds the navigation bar's problem count is reused before it is computed again.
PROBLEM_COUNT_TTL_SECONDS = 15
#: The header marking a response as the live fragment (a login page answered instead has none).
LIVE_HEADER = "X-Ops-Live"


class RerunForm(SecureForm):
    job = HiddenField(validators=[InputRequired()])
    slot = HiddenField(validators=[InputRequired()])


class DeadLetterForm(SecureForm):
    """Only a CSRF token: the queue and the action are in the URL."""


def _snapshot() -> dict[str, Any]:
    context = database()
    client = context.client()
    now = utcnow()
    assert client is not None, "the views check for a broker first"
    try:
        record_sample(client, database().session_factory, context.settings, now)
    except Exception:  # noqa: BLE001 - a sample lost is a dot missing on a chart, not an error page
        pass
    with context.read_sessions() as session:
        snapshot = take_snapshot(client, session, context.settings, now)
        jobs = last_and_next_runs(session, now)
        publishing = publishing_stats(session, now - SUCCESS_WINDOW, now)
    found = problems(snapshot, Thresholds.from_settings(context.settings))
    data = snapshot_dict(snapshot)
    data.update(problems=[p.as_dict() for p in found], healthy=not found, schedule=jobs,
                publishing=publishing.as_dict())
    return data


def _render_charts(range_name: str) -> list[Any]:
    now = utcnow()
    with database().read_sessions() as session:
        data = charts(session, now, range_name)
    r = data["range"]
    # One axis for every chart of the range: the same UTC span, whatever each chart's buckets,
    # ending where the current hour's bucket ends (its bar, drawn mid-bucket, stays inside).
    end = buckets(now, RANGES[r].bucket, RANGES[r].bucket)[0] + RANGES[r].bucket
    span = {"start": end - RANGES[r].span, "end": end}
    views = [
        time_chart(f"chart-published-{r}", f"Posts published per hour ({r})", data["published"],
                   kind="bar", unit="count", **span),
        time_chart(f"chart-lateness-{r}", f"Publish lateness ({r})", data["lateness"], unit="ms", **span),
        time_chart(f"chart-success-{r}", f"Success rate, all work ({r})", data["success_rate"], unit="percent",
                   y_max=100, **span),
        time_chart(f"chart-depth-{r}", f"Queue depth ({r})", data["queue_depth"], unit="count", **span),
    ]
    return [view.render(table="details") for view in views]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _live_context() -> dict[str, Any]:
    """Everything the live part of the page shows, read once."""
    client = database().client()
    assert client is not None, "the views check for a broker first"
    data = _snapshot()
    now = utcnow()
    with database().read_sessions() as session:
        failed = failed_slots(session, now - RANGES["7d"].span, now)
    letters = {q: dead_letters(client, q, parameters=ACTOR_PARAMETERS, limit=DEAD_LETTERS_SHOWN) for q in QUEUES}
    work = {d.id: work_of(d.actor, d.args)["job"] for rows in letters.values() for d in rows}
    return {"data": data, "failed": failed, "letters": letters, "work": work, "rerun_form": RerunForm,
            "dead_form": DeadLetterForm, "now": now, "silence_seconds": database().settings.worker_silence_seconds}


class OperationsView(OperatorRequired, BaseView):
    """The operator's live view of the engine, better than Flower because it knows the database."""

    @expose("/")
    def index(self) -> Any:
        client = database().client()
        range_name = request.args.get("range", "24h")
        if range_name not in RANGES:
            abort(404)
        if client is None:
            return self.render("autopilot/operations.html", unavailable=True)
        return self.render("autopilot/operations.html", unavailable=False, charts=_render_charts(range_name),
                           range_name=range_name, ranges=list(RANGES), refresh_seconds=REFRESH_SECONDS,
                           **_live_context())

    @expose("/live")
    def live(self) -> Any:
        """The live part of the page, as HTML: what the script swaps in every few seconds."""
        if database().client() is None:
            abort(503)
        response = make_response(self.render("autopilot/_operations_live.html", **_live_context()))
        response.headers[LIVE_HEADER] = "1"
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/data.json")
    def data(self) -> Response:
        if database().client() is None:
            return jsonify(error="REDIS_URL not set: the in-process broker has no state to show"), 503
        import json

        return Response(json.dumps(_snapshot(), default=_json_default), mimetype="application/json")

    @expose("/charts")
    def charts_fragment(self) -> Any:
        range_name = request.args.get("range", "24h")
        if range_name not in RANGES:
            abort(404)
        return "".join(f'<div class="col-lg-6 mb-3">{c}</div>' for c in _render_charts(range_name))

    @expose("/rerun", methods=["POST"])
    def rerun(self) -> Any:
        form = RerunForm(request.form)
        if not form.validate():
            flash("Re-run refused: the form was stale or incomplete, reload and try again.", "error")
            return redirect(url_for(".index"))
        context = database()
        try:
            slot = datetime.fromisoformat(form.slot.data or "").astimezone(UTC)
            broker = context.broker()
            message_id = rerun_slot(database().session_factory,
                                    lambda job, at: send_manual_run(broker, job, at).message_id,
                                    form.job.data or "", slot,
                                    actor=current_actor(), now=utcnow())
        except (ValueError, ValidationError, NotFound) as exc:
            flash(f"Re-run refused: {exc}", "error")
        else:
            flash(f"{form.job.data} for slot {slot:%Y-%m-%d %H:%M} UTC sent again (message {message_id}).",
                  "success")
        return redirect(url_for(".index"))

    @expose("/dead/<queue>/<verb>", methods=["POST"])
    def dead(self, queue: str, verb: str) -> Any:
        form = DeadLetterForm(request.form)
        if not form.validate():
            flash("Refused: the form was stale, reload and try again.", "error")
            return redirect(url_for(".index"))
        client = database().client()
        if client is None or queue not in QUEUES or verb not in ("requeue", "purge"):
            abort(404)
        ids = request.form.getlist("id") or None
        done = act_on_dead_letters(database().session_factory, client, queue, verb, actor=current_actor(),
                                   ids=ids)
        flash(f"{verb}d {len(done)} dead letter(s) of {queue}.", "success")
        return redirect(url_for(".index"))


def init_app(app: Flask, panel: Admin) -> None:
    """Register the Operations page and the health/metrics endpoints on ``app``."""
    from admin import health

    app.register_blueprint(health.bp)
    app.context_processor(lambda: {"ops_problem_count": problem_count})
    panel.add_view(OperationsView(name="Operations", endpoint="operations", url=f"{app.config[VIEWS_URL_KEY]}/operations"))


def problem_count() -> int | None:
    """How many problems the Operations page lists (None: no Redis, or not signed in).

    Shown in every page's navigation bar; cached per process for
    :data:`PROBLEM_COUNT_TTL_SECONDS`, so browsing the admin does not take a snapshot per page.
    """
    if getattr(g, "operator", None) is None:
        return None
    context = database()
    client = context.client()
    if client is None:
        return None
    cache = current_app.extensions.setdefault("autopilot_problem_count", {})
    now = time.monotonic()
    if cache.get("until", 0.0) > now:
        return cache["count"]
    try:
        with context.read_sessions() as session:
            snapshot = take_snapshot(client, session, context.settings, utcnow())
        count = len(problems(snapshot, Thresholds.from_settings(context.settings)))
    except Exception:  # noqa: BLE001 - the menu must render; the Operations page says what is wrong
        return None
    cache.update(until=now + PROBLEM_COUNT_TTL_SECONDS, count=count)
    return count
