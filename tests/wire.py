"""Recorded provider responses (tests/fixtures/wire): load one, replay it through a local fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WIRE = Path(__file__).parent / "fixtures" / "wire"


def load(name: str) -> dict[str, Any]:
    """``tests/fixtures/wire/<name>.json``: ``status``, ``headers``, ``body`` and its ``source``."""
    data = json.loads((WIRE / f"{name}.json").read_text(encoding="utf-8"))
    assert data.get("source"), f"{name} must say where it comes from"
    return data


def replay_next(fake: Any, name: str, **match: Any) -> dict[str, Any]:
    """Make a platform fake answer its next (matching) request with the recorded response."""
    data = load(name)
    headers = {k: v for k, v in data["headers"].items() if k.lower() != "content-type"}
    fake.respond_next(data["status"], data["body"], headers=headers, **match)
    return data
