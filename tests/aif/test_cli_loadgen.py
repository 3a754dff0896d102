"""CLI and load generator: refusals (unit) and a real server under open-loop load (integration)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aif_helpers import make_serving_folder

from mercato.aif.cli import main
from mercato.aif.launch import ServerProcess
from mercato.aif.loadgen import check_local_url, run_load
from mercato.aif.serve import ServeConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "http://0.0.0.0:1"])
def test_load_only_targets_localhost(url: str) -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        check_local_url(url)
    assert main(["bench", "--url", url]) == 2


def test_local_url_ok_and_bad_bounds() -> None:
    assert check_local_url("http://127.0.0.1:9/") == "http://127.0.0.1:9"
    with pytest.raises(ValueError, match="rate"):
        run_load("http://127.0.0.1:9", rate=0)


def test_serve_refuses_unknown_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--no_such_key", "1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert main(["serve", "--mode", "fast"]) == 2
    assert main(["serve", "--model", "toy", "--mode", "fast"]) == 2
    assert main(["serve", "--checkpoint", "/nonexistent/aif"]) == 2
    assert "not a serving folder" in capsys.readouterr().err
    assert main(["train", "--data", "2m"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


@pytest.mark.integration
def test_bench_cli_against_a_server(tmp_path: Path) -> None:
    folder = make_serving_folder(tmp_path / "serving", num_users=20, num_items=200, attention="bea")
    cfg = ServeConfig(
        checkpoint=str(folder), store="embedded", store_dir=str(tmp_path / "store"), num_candidates=50
    )
    with ServerProcess(cfg) as srv:
        out = tmp_path / "load.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mercato",
                "aif",
                "bench",
                "--url",
                srv.url,
                "--rate",
                "40",
                "--requests",
                "60",
                "--seconds",
                "5",
                "--users",
                "30",
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert (
        res["sent"] == 60 and res["ok"] == 60 and res["failed"] == 0
    )  # users 20..29 are cold starts, still 200
    assert len(res["timeline"]) == 60 and 0 < res["p50_ms"] <= res["p99_ms"] <= res["max_ms"]


@pytest.mark.integration
def test_benchmark_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "aif.py"), "--quick", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    block = (tmp_path / "aif-quick" / "docs" / "results.md").read_text()
    assert block.count("Goal:") == 3
    assert (tmp_path / "aif-quick" / "docs" / "img" / "aif" / "redis_outage.png").stat().st_size > 1000
