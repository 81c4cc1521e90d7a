"""A real Redis master, replica and Sentinel on loopback ports, for the failover test.

Each runs as its own ``redis-server`` (``--sentinel`` for the Sentinel) in a temporary directory
and is stopped by pid at the end; nothing touches the shared Redis on 6379.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

MASTER_NAME = "mymaster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisHA:
    master_port: int
    replica_port: int
    sentinel_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{MASTER_NAME}/0"

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True)

    def master_port_now(self) -> int:
        host, port = self.sentinel().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(port)

    def failover(self) -> None:
        """SENTINEL FAILOVER: promote the replica, demote the master (both stay up)."""
        self.sentinel().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)


def _wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except redis.RedisError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def redis_ha(tmp: Path) -> Iterator[RedisHA]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing (scripts/ensure-services installs Redis)")
    ha = RedisHA(free_port(), free_port(), free_port())
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    try:
        for name, port, extra in (("master", ha.master_port, []),
                                  ("replica", ha.replica_port, ["--replicaof", "127.0.0.1", str(ha.master_port)])):
            data = tmp / name
            data.mkdir()
            ha.processes.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--dir", str(data), *common, *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        conf = tmp / "sentinel.conf"
        conf.write_text(
            f"port {ha.sentinel_port}\nbind 127.0.0.1\ndir {tmp}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {ha.master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n")
        ha.processes.append(subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        replica = redis.Redis(port=ha.replica_port, decode_responses=True)
        assert _wait(lambda: replica.info("replication")["master_link_status"] == "up", 20)
        assert _wait(lambda: any(r.get("flags") == "slave" for r in ha.sentinel().execute_command(
            "SENTINEL", "REPLICAS", MASTER_NAME)), 30), "the Sentinel never saw the replica"
        yield ha
    finally:
        for process in ha.processes:
            process.terminate()
        for process in ha.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
