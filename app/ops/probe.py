"""Container health checks: ``python -m app.ops.probe worker|process NAME|http URL``.

* ``worker``: a worker process of *this host* (the container) is registered and its Dramatiq
  heartbeat is fresh (see :mod:`app.ops.workers`): the process runs and talks to Redis.
* ``process NAME``: a process whose command line contains NAME runs here (the scheduler:
  ``periodiq`` only sends, so it has no heartbeat of its own).
* ``http URL``: the URL answers 2xx within five seconds (the admin's ``/healthz``).

Exit 0 when healthy, 1 with a one-line reason otherwise; nothing else is printed.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

#: Seconds an HTTP probe waits.
DEFAULT_HTTP_TIMEOUT_SECONDS = 5


def worker_here() -> str | None:
    from app.config import get_settings
    from app.ops import broker_client
    from app.ops.workers import census

    settings = get_settings()
    found = census(broker_client(settings), silence_seconds=settings.worker_silence_seconds)
    host = socket.gethostname()
    if any(w.host == host for w in found.live):
        return None
    return f"no live worker registered from {host}"


def process_here(name: str) -> str | None:
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if name in command and "app.ops.probe" not in command:
            return None
    return f"no process running {name!r}"


def http_ok(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=DEFAULT_HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310 - fixed local URL
            return None if 200 <= response.status < 300 else f"{url} answered {response.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"] and len(argv) == 1:
        problem = worker_here()
    elif argv[:1] == ["process"] and len(argv) == 2:
        problem = process_here(argv[1])
    elif argv[:1] == ["http"] and len(argv) == 2:
        problem = http_ok(argv[1])
    else:
        print("usage: python -m app.ops.probe worker | process NAME | http URL", file=sys.stderr)
        return 2
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
