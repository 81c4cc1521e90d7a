"""The fake-server helper itself: a failing fake check must fail the test, not just answer 500."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.http import FakeHTTPServer


def test_a_handler_error_is_answered_500_and_raised_when_the_block_exits():
    def handler(method, path, headers, body):  # type: ignore[no-untyped-def]
        raise AssertionError("missing X-API-KEY")

    with pytest.raises(AssertionError, match="missing X-API-KEY"):
        with FakeHTTPServer(handler) as server:
            assert httpx.get(server.url + "/search").status_code == 500
