"""``dramatiq actors`` and ``periodiq actors``: the commands habit suggests stop at once, naming
the right one, instead of a worker that consumes nothing and says it is ready.

Each command is run as a real process, as an operator would type it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: Far more than the refusal takes (an import), far less than a worker that never stops.
TIMEOUT_SECONDS = 60
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [
    [str(BIN / "dramatiq"), "actors", "--processes", "1", "--threads", "1"],
    [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "1"],
    [str(BIN / "periodiq"), "actors"],
], ids=["dramatiq", "python -m dramatiq", "periodiq"])
def test_the_bare_package_stops_at_once_naming_the_entry_point(command, tmp_path, redis_url):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "REDIS_URL": redis_url}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the worker processes too, not only their parent
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command)} was still running after {TIMEOUT_SECONDS} s: {stderr!r}")
    output = stdout + stderr
    assert process.returncode != 0, output
    program = "periodiq" if "periodiq" in command[0] else "dramatiq"
    assert f"{program} actors.entrypoint" in output, output
    assert "ready for action" not in output
