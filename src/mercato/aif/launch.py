"""Start ``mercato aif serve`` as a child process on 127.0.0.1 and stop it by PID (tests, benchmarks)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mercato.aif.serve import ServeConfig
from mercato.core.config import config_to_dict

__all__ = ["RedisProcess", "ServerProcess", "free_port"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``with ServerProcess(cfg) as srv: srv.url`` runs the server in a child process (uvicorn, 1+ workers)."""

    def __init__(self, cfg: ServeConfig, workers: int = 1, port: int | None = None, timeout_s: float = 60.0):
        self.cfg = cfg
        self.workers = workers
        self.port = port or free_port()
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="aif-serve-")
        self.log_path = Path(self._dir.name) / "server.log"
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.start()
        self.wait_ready()
        return self

    def start(self) -> None:
        """Start the child without waiting for it (several servers then start side by side)."""
        cfg_path = Path(self._dir.name) / "serve.yaml"
        cfg_path.write_text(yaml.safe_dump(config_to_dict(self.cfg)))
        cmd = [
            sys.executable,
            "-m",
            "mercato",
            "aif",
            "serve",
            "--config",
            str(cfg_path),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        env = {**os.environ, "MERCATO_NO_PROGRESS": "1"}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait_ready(self) -> dict[str, Any]:
        import httpx

        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                r = httpx.get(self.url + "/health", timeout=1.0)
                if r.status_code == 200:
                    return dict(r.json())
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server on port {self.port} not ready in {self.timeout_s}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: uvicorn's worker processes too
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
        self._dir.cleanup()


class RedisProcess:
    """A ``redis-server`` child on a free 127.0.0.1 port, without persistence; stopped by PID."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        import redis

        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (make sysdeps)")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.2)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
