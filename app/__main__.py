"""``python -m app`` is the ``autopilot`` command."""

from app.cli import main

main()
