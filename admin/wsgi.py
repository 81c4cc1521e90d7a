"""WSGI entry point: ``flask --app admin.wsgi run`` or ``waitress-serve admin.wsgi:app``."""

from __future__ import annotations

from admin import create_app

app = create_app()
