"""``/admin/operations/``: queues, workers, scheduler, job runs, dead letters and charts, live.

The page renders once from the same functions as ``autopilot check`` (:mod:`app.ops`), then a
small script (``static/operations.js``) refreshes the figures from ``data.json`` every few
seconds and the charts from ``charts`` every minute: no page reload. Each refresh also records
the minute's queue depth sample if no worker has yet (see :mod:`app.ops.sampling`).

Actions are CSRF-protected POSTs (Flask-Admin's SecureForm) and leave audit rows: re-run a
failed slot, requeue or purge a queue's dead letters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, flash, jsonify, redirect, request, url_for
from flask_admin import Admin, BaseView, expose
from flask_admin.form import SecureForm
from wtforms import HiddenField
from wtforms.validators import InputRequired

from actors.messages import ACTOR_PARAMETERS, send_manual_run
from admin.auth import OperatorRequired, current_actor
from admin.charts import chart
from admin.ext import database
from app.clock import utcnow
from app.errors import NotFound, ValidationError
from app.ops.actions import act_on_dead_letters, rerun_slot
from app.ops.check import SUCCESS_WINDOW, Thresholds, problems, snapshot_dict, take_snapshot
from app.ops.deadletters import dead_letters
from app.ops.history import RANGES, charts
from app.ops.sampling import record_sample
from app.ops.stats import failed_slots, last_and_next_runs, publishing_stats
from app.queues import QUEUES

#: Seconds between two refreshes of the figures (the charts refresh every minute).
REFRESH_SECONDS = 5
#: Dead letters listed per queue on the page.
DEAD_LETTERS_SHOWN = 20


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
    with database().read_sessions() as session:
        data = charts(session, utcnow(), range_name)
    r = data["range"]
    return [
        chart(f"Posts published per hour ({r})", data["published"], kind="bar", chart_id=f"chart-published-{r}"),
        chart(f"Publish lateness ({r})", data["lateness"], unit="ms", chart_id=f"chart-lateness-{r}"),
        chart(f"Job success rate ({r})", data["success_rate"], unit="%", y_max=100, chart_id=f"chart-success-{r}"),
        chart(f"Queue depth ({r})", data["queue_depth"], chart_id=f"chart-depth-{r}"),
    ]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


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
        data = _snapshot()
        now = utcnow()
        with database().read_sessions() as session:
            failed = failed_slots(session, now - RANGES["7d"].span, now)
        letters = {q: dead_letters(client, q, parameters=ACTOR_PARAMETERS, limit=DEAD_LETTERS_SHOWN) for q in QUEUES}
        return self.render("autopilot/operations.html", unavailable=False, data=data, failed=failed,
                           letters=letters, charts=_render_charts(range_name), range_name=range_name,
                           ranges=list(RANGES), refresh_seconds=REFRESH_SECONDS, rerun_form=RerunForm,
                           dead_form=DeadLetterForm, now=now)

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
    panel.add_view(OperationsView(name="Operations", endpoint="operations", url="/admin/operations"))
