"""The Procfile and the compose file run the posting worker with the same, documented sizing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.procfile import PROCFILE, parse_command, posting_worker

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def compose_command(service: str) -> str:
    """A compose service's ``command:`` (the file is plain YAML; PyYAML is not a dependency)."""
    lines = COMPOSE.read_text().splitlines()
    start = lines.index(f"  {service}:")
    for line in lines[start + 1:]:
        if line.startswith("  ") and not line.startswith("    "):
            break  # the next service
        if line.strip().startswith("command:"):
            return line.split("command:", 1)[1].strip()
    raise AssertionError(f"{service} has no command in {COMPOSE}")


def test_the_procfile_and_compose_size_the_posting_worker_alike() -> None:
    assert posting_worker(PROCFILE) == parse_command(compose_command("worker-posting"))


def test_a_posting_process_takes_no_more_messages_than_it_has_threads() -> None:
    """README "Sizing the posting worker": prefetch equal to the threads, so a burst's messages
    are shared between processes instead of waiting behind one process's busy threads."""
    worker = posting_worker(PROCFILE)
    assert worker.env["dramatiq_queue_prefetch"] == str(worker.threads)
    assert int(worker.env["PUBLISH_CONCURRENCY"]) >= 1


def test_a_worker_line_without_its_sizing_or_missing_is_refused(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("worker_posting: dramatiq actors.entrypoint -Q posting\n")
    with pytest.raises(ValueError, match="--processes and --threads"):
        posting_worker(procfile)
    with pytest.raises(ValueError, match="no worker_other line"):
        posting_worker(procfile, "worker_other")
