"""What ``dramatiq`` and ``periodiq`` import in a worker or scheduler process.

The broker and its actors, built from the environment (``dramatiq actors.entrypoint -Q
posting``, ``periodiq actors.entrypoint``); both commands read the module's ``broker``.
"""

from __future__ import annotations

from actors import setup
from app.config import get_settings

broker = setup(get_settings())
