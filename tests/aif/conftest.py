"""Fixtures for the AIF tests: a real ``redis-server`` on a free 127.0.0.1 port, stopped by PID, and a tiny
serving folder of a (seeded, untrained) AIFModel on MovieLens-like synthetic rows."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from aif_helpers import make_serving_folder

from mercato.aif.launch import RedisProcess, free_port

RedisServer = RedisProcess  # the tests' name for the library's redis-server child

torch.set_num_threads(1)  # tiny tensors: one thread is fastest on a shared 2-core machine


@pytest.fixture(scope="session")
def serving_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEA AIFModel serving folder: 50 users, 500 items."""
    return make_serving_folder(tmp_path_factory.mktemp("aif") / "serving", 50, 500, attention="bea")


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
