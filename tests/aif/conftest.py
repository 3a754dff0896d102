"""Fixtures for the AIF tests: a real ``redis-server`` on a free 127.0.0.1 port, stopped by PID."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from mercato.aif.launch import RedisProcess, free_port

RedisServer = RedisProcess  # the tests' name for the library's redis-server child


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make sysdeps)")
    server = RedisServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
