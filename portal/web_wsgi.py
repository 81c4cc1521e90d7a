"""WSGI entry point of the Procfile's ``web`` process: ``gunicorn portal.web_wsgi:app``.

The portal at ``/`` and the admin under ``/admin`` (see :mod:`portal.web`).
"""

from __future__ import annotations

from portal.web import create_web_app

app = create_web_app()
