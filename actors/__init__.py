"""Thin Dramatiq actors: parse the message, call a workflow, send what it asks, nothing else.

Importing this package builds the broker from the environment, so both
``dramatiq actors -Q posting`` and ``periodiq actors`` work from the repository root.
"""

from __future__ import annotations

import dramatiq

from app.broker import build_broker
from app.config import get_settings

broker = build_broker(get_settings())
dramatiq.set_broker(broker)

from actors import per_user, periodic, posting  # noqa: E402,F401  (registers the actors)
