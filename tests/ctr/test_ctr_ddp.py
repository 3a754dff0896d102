from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ, MERCATO_NO_PROGRESS="1", GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


@pytest.mark.integration
def test_two_process_ddp_matches_single_process(tmp_path: Path) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([sys.executable, str(WORKER), str(single)], check=True, env=_env(), timeout=60)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(WORKER),
        str(ddp),
    ]
    proc = subprocess.run(cmd, env=_env(), timeout=60, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = torch.load(single / "result.pt"), torch.load(ddp / "result.pt")
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["state"].keys() == two["state"].keys()
    for key, value in one["state"].items():
        assert torch.allclose(value, two["state"][key], atol=1e-5, rtol=1e-4), key
    assert len(two["history"]) == 3
    for a, b in zip(one["history"], two["history"]):
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-5), k
    assert (ddp / "run" / "checkpoint" / "model.safetensors").is_file()  # rank 0 wrote its checkpoint
    # training moved the weights away from the common initialisation
    assert one["history"][-1]["train_loss"] < one["history"][0]["train_loss"]
