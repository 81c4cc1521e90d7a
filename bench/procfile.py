"""The Procfile's posting worker, as the benches start it: its settings read from one place.

The burst, throughput and punctuality benches measure "the Procfile's posting worker"; reading
its line (``worker_posting: env VAR=value ... dramatiq actors.entrypoint -Q posting
--processes P --threads T ...``) keeps them measuring what is deployed when the sizing changes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "Procfile"


@dataclass(frozen=True)
class PostingWorker:
    """The process count, thread count and environment of the Procfile's posting worker."""

    processes: int
    threads: int
    #: The variables its line sets before ``dramatiq`` (prefetch, PUBLISH_CONCURRENCY).
    env: dict[str, str] = field(default_factory=dict)


def posting_worker(procfile: Path = PROCFILE, name: str = "worker_posting") -> PostingWorker:
    """Parse the ``name`` line of ``procfile``; ValueError when it is missing or malformed."""
    for line in procfile.read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return parse_command(command)
    raise ValueError(f"{procfile} has no {name} line")


def parse_command(command: str) -> PostingWorker:
    """``[env VAR=value ...] dramatiq ... --processes P --threads T ...`` (a Procfile line's or
    a compose service's command)."""
    words = shlex.split(command)
    if words and words[0] == "env":
        words = words[1:]
    env = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        variable, _, value = words.pop(0).partition("=")
        env[variable] = value
    options = dict(zip(words, words[1:], strict=False))
    try:
        return PostingWorker(int(options["--processes"]), int(options["--threads"]), env)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"a worker command needs --processes and --threads: {command!r}") from exc


def worker_env(worker: PostingWorker, threads: int, prefetch: int = 0) -> dict[str, str]:
    """The Procfile line's variables for a run with ``threads`` threads: prefetch follows the
    threads (the sizing rule) unless given; the caller's own environment wins over the line."""
    import os

    env = {**worker.env, **{k: v for k, v in os.environ.items() if k in worker.env}}
    env["dramatiq_queue_prefetch"] = str(prefetch or threads)
    return env


def add_worker_arguments(parser: Any, *, prefetch: bool = True) -> None:
    """``--processes`` and ``--threads`` defaulting to the Procfile's posting worker, and
    ``--prefetch`` (default: the threads, the sizing rule)."""
    worker = posting_worker()
    parser.add_argument("--processes", type=int, default=worker.processes, help="default: the Procfile's posting worker")
    parser.add_argument("--threads", type=int, default=worker.threads, help="default: the Procfile's posting worker")
    if prefetch:
        parser.add_argument("--prefetch", type=int, default=0,
                            help="messages a process holds at once (dramatiq_queue_prefetch; default: --threads)")
