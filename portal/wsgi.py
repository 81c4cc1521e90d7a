"""WSGI entry point of the portal alone: ``gunicorn portal.wsgi:app`` (or ``flask --app portal.wsgi run``).

The Procfile's ``web`` line serves the portal and the admin together: see :mod:`portal.web`.
"""

from __future__ import annotations

from portal import create_app

app = create_app()
