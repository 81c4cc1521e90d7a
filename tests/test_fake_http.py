"""The fake-server helper itself: a failing fake check must fail the test, not just answer 500."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from tests.fakes.http import FakeHTTPServer


def test_a_handler_error_is_answered_500_and_raised_when_the_block_exits():
    def handler(method, path, headers, body):  # type: ignore[no-untyped-def]
        raise AssertionError("missing X-API-KEY")

    with pytest.raises(AssertionError, match="missing X-API-KEY"):
        with FakeHTTPServer(handler) as server:
            assert httpx.get(server.url + "/search").status_code == 500


def test_keep_alive_replies_do_not_wait_for_a_delayed_ack():
    """Headers and body are two writes: with Nagle's algorithm on, the body waited for the
    client's delayed ACK (40 ms on Linux) on every reply after the first, which the fan-out
    bench charged to the workers as generation latency."""

    def handler(method, path, headers, body):  # type: ignore[no-untyped-def]
        return 200, {"Content-Type": "application/json"}, {"ok": True}

    with FakeHTTPServer(handler) as server, httpx.Client() as client:
        durations = []
        for _ in range(15):
            started = time.perf_counter()
            assert client.post(server.url + "/v1/chat/completions", json={"x": 1}).status_code == 200
            durations.append(time.perf_counter() - started)
    assert statistics.median(durations) < 0.02, durations
