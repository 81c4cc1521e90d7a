"""A real streaming replica of the local PostgreSQL, for the replica-routing test.

``pg_basebackup -R`` copies the running cluster (127.0.0.1:5432) into a temporary directory and
writes the standby configuration; ``pg_ctl`` starts it on a free loopback port. PostgreSQL
refuses to run as root, so under root both run as the ``postgres`` user (``runuser``).
scripts/ensure-services allows loopback replication connections in pg_hba.conf.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.e2e.ops.redis_ha import free_port


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"{name} not found under /usr/lib/postgresql/*/bin (install PostgreSQL's server package)")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass(frozen=True)
class Replica:
    port: int
    directory: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"


def _run(command: list[str], timeout: float = 120, log: str | None = None) -> None:
    result = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = open(log, errors="replace").read()[-2000:] if log and os.path.exists(log) else ""
        raise AssertionError(f"{' '.join(command)} failed: {result.stderr.strip()[-2000:]}\n{tail}")


@contextmanager
def streaming_replica(primary_port: int = 5432) -> Iterator[Replica]:
    directory = tempfile.mkdtemp(prefix="autopilot-replica-")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    os.chmod(directory, 0o700)
    replica = Replica(free_port(), directory)
    started = False
    try:
        _run([pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
              "-D", directory, "-R", "-X", "stream", "-c", "fast"])
        # Debian keeps postgresql.conf and pg_hba.conf in /etc, so the copy has neither: give the
        # standby defaults (plus the standby settings -R wrote) and loopback trust like the primary.
        for name, content in (("postgresql.conf", "# standby for tests/e2e/ops/test_replica.py\n"),
                              ("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 trust\n")):
            path = os.path.join(directory, name)
            with open(path, "w") as handle:
                handle.write(content)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")
        _run([pg_bin("pg_ctl"), "-D", directory, "-l", f"{directory}/server.log", "-w", "-t", "60",
              "-o", f"-p {replica.port} -c listen_addresses=127.0.0.1 -k {directory} "
                    "-c hot_standby=on",
              "start"], log=f"{directory}/server.log")
        started = True
        yield replica
    finally:
        if started:
            _run([pg_bin("pg_ctl"), "-D", directory, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(directory, ignore_errors=True)
