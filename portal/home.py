"""The home page (the dashboard, :mod:`portal.dashboard`) and the load balancer's ``/healthz``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from portal.auth import login_required
from portal.dashboard import page as dashboard_page

bp = Blueprint("home", __name__)

NAV = ("Dashboard", "home.index")


@bp.route("/healthz")
def healthz() -> Any:
    """The process is alive and serving requests (nothing else is touched)."""
    return jsonify(status="ok")


@bp.route("/")
@login_required
def index() -> str:
    return dashboard_page()
