"""Real Dramatiq worker processes for the tests, and a bounded poll: shared by the end-to-end
publishing tests and the operations harness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds a worker group is given to stop on SIGTERM before it is killed.
DEFAULT_STOP_SECONDS = 15


@dataclass
class Worker:
    """A ``dramatiq actors.entrypoint -Q ...`` process group, its stderr in ``log``."""

    process: subprocess.Popen[bytes]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole group and wait for it to end."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)

    def stop(self, sig: int = signal.SIGTERM, *, seconds: float = DEFAULT_STOP_SECONDS) -> None:
        """Stop the group with ``sig`` (gracefully by default); killed if it lingers."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.kill()


def start_worker(env: dict[str, str], log: Path, *queues: str, processes: int = 1, threads: int = 4) -> Worker:
    """Start ``dramatiq actors.entrypoint -Q QUEUES`` (``posting`` when none is named)."""
    handle = log.open("ab")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "actors.entrypoint", "-Q", *(queues or ("posting",)),
             "--processes", str(processes), "--threads", str(threads)],
            env=env, stdout=subprocess.DEVNULL, stderr=handle, start_new_session=True)
    finally:
        handle.close()
    return Worker(process, log)


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or the last falsy one after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
