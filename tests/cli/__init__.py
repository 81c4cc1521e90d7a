"""Tests of the ``autopilot`` command run as a subprocess (``python -m app``)."""

from __future__ import annotations

import subprocess
import sys


def autopilot(url: str, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, env=env,
                          timeout=120)
