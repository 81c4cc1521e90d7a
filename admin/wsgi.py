"""WSGI entry point: ``flask --app admin.wsgi run`` locally, ``gunicorn admin.wsgi:app`` in the Procfile."""

from __future__ import annotations

from admin import create_app

app = create_app()
