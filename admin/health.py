"""``/healthz``, ``/readyz`` and ``/metrics``: for load balancers, orchestrators and Prometheus.

None needs a login: they reveal counts and timings, never a post, a user or a secret. Put the
admin behind a network boundary that lets only the scraper and the orchestrator reach them, or
set ``METRICS_BEARER_TOKEN`` so that ``/metrics`` answers only Prometheus (docker-compose does).

``/metrics`` sends prometheus_client's content type as the whole header: Flask's ``mimetype=``
would append a second ``charset``, which Prometheus 3 cannot parse (the target goes down).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from admin.ext import database
from app.models import utcnow
from app.ops.prometheus import OperationsCollector

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> Response:
    """The process is alive and serving requests (nothing else is touched)."""
    return jsonify(status="ok")


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by type
        return {"ok": False, "ms": round((time.perf_counter() - started) * 1000, 2),
                "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2), **(detail or {})}


@bp.route("/readyz")
def readyz() -> tuple[Response, int]:
    """The database and Redis answer; 503 naming the one that does not, with each one's timing."""

    def db() -> None:
        with database().engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def broker() -> dict[str, Any] | None:
        client = database().client()
        if client is None:
            return {"detail": "REDIS_URL not set: in-process broker"}
        client.ping()
        return None

    checks = {"database": _timed(db), "redis": _timed(broker)}
    ready = all(c["ok"] for c in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503


@bp.route("/metrics")
def metrics() -> Response:
    context = database()
    expected = context.settings.metrics_bearer_token
    if expected is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            return Response("a bearer token is required (METRICS_BEARER_TOKEN)\n", status=401,
                            content_type="text/plain; charset=utf-8",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OperationsCollector(context.settings, context.client, context.read_sessions, utcnow))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
