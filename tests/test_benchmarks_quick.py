"""Every benchmark script's ``--quick`` mode runs end to end and writes plausible results (integration).

The full runs produce the numbers in docs/; these smoke runs keep the scripts from rotting between them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def _run(script: str, *args: str, timeout: int = 600) -> str:
    env = {**os.environ, "MERCATO_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _cache_files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("cache/*.json")}


def _assert_served_from_cache(script: str, root: Path, *args: str) -> None:
    """A second identical run computes nothing: every result comes from the runner's cache."""
    before = _cache_files(root)
    assert before, f"{script}: no cached runs under {root}"
    log = _run(script, "--root", str(root), *args)
    assert "runs to compute" not in log, log[-2000:]
    assert _cache_files(root) == before


def test_ctr_baselines_quick(tmp_path: Path) -> None:
    out = tmp_path / "ctr.json"
    root = tmp_path / "bench"
    _run("ctr_baselines.py", "--threads", "1", "--out", str(out), "--root", str(root))
    rows = json.loads(out.read_text())
    assert {r["model"] for r in rows} == {"LR", "FM", "DeepFM", "DCNv2"}
    assert all(0.55 < r["auc"] < 1.0 for r in rows)
    page = (root / "ctr_baselines-quick" / "docs" / "results.md").read_text()
    assert "lr 0.001, batch_size 4096, epochs 1" in page and "Machine: " in page  # rendered from the configs
    _assert_served_from_cache("ctr_baselines.py", root, "--threads", "1")


def test_fat_quick(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    _run("fat.py", "--root", str(root))
    docs = root / "fat-quick" / "docs"
    page = (docs / "fat.md").read_text()
    for block in ("fat-comparison", "fat-scaling", "fat-speed", "fat-heatmap", "fat-ablation"):
        assert f"mercato:begin {block}" in page, block
    assert "| fat |" in page and "Bayes-optimal" in page
    assert (docs / "img" / "fat" / "scaling.png").stat().st_size > 1000
    assert "mercato:begin fat " in (docs / "results.md").read_text()
    _assert_served_from_cache("fat.py", root)


def test_field_softmax_quick(tmp_path: Path) -> None:
    log = _run("field_softmax.py", "--root", str(tmp_path))
    assert "torch.softmax" in log and "field_softmax" in log
    assert "| (256, 4, 10, 10) |" in (tmp_path / "field_softmax-quick" / "docs" / "ctr.md").read_text()
    _assert_served_from_cache("field_softmax.py", tmp_path)


def _results(root: Path, name: str) -> dict:
    return json.loads((root / f"{name}-quick" / "results.json").read_text())


def test_isadre_quick(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    _run("isadre.py", "--root", str(root))
    assert {p.name for p in tmp_path.iterdir()} == {"bench"}  # writes only under its output root
    res = _results(root, "isadre")
    cell = res["cells"]["10"]["0"]  # d = 10, seed 0: true MI 2.5; a collapsed fit gives ~0
    for key in ("isa@1", "isa@4", "dre_inf@100", "clf"):
        assert abs(cell[key]["mi"] - 2.5) < 0.75, (key, cell[key])  # within 30 %
    assert cell["isa@1"]["nfe"] < cell["dre_inf@100"]["nfe"]
    assert abs(cell["exact"]["mi"] - 2.5) < 0.25  # the true log ratio on 2000 test points (std about 0.04)
    page = (root / "isadre-quick" / "docs" / "isadre.md").read_text()
    assert "lr 0.003, t_sampler lognorm" in page and "Machine: " in page  # rendered from the configs
    assert (
        "mercato:begin isadre-ablation" in page and "| ISA-DRE without the quadratic branch, 1 step |" in page
    )
    assert (root / "isadre-quick" / "docs" / "img" / "isadre" / "mse_vs_nfe.png").stat().st_size > 1000
    _assert_served_from_cache("isadre.py", root)


def test_isadre_budget_quick(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    _run("isadre_budget.py", "--root", str(root))
    cells = _results(root, "isadre_budget")["cells"]
    assert set(cells) == {"d10/s101/150x1024", "d10/s101/400x1024"}  # one cell per budget (steps x batch)
    for key in ("isa@1", "isa@4", "dre_inf@100"):
        assert abs(cells["d10/s101/400x1024"][key]["mi"] - 2.5) < 0.75, key  # within 30 %
    assert "| 10 (MI 2.5) | 150 | 1024 |" in (root / "isadre_budget-quick" / "docs" / "isadre.md").read_text()
    _assert_served_from_cache("isadre_budget.py", root)


def test_isadre_horizon_quick(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    _run("isadre_horizon.py", "--seeds", "0", "--root", str(root))
    res = _results(root, "isadre_horizon")
    run = res["seeds"]["0"]
    full = run["cumulative"][-1]
    assert abs(full["exact"] - res["dim"] / 4) < 0.25  # the exact path integral recovers the MI (2000 points)
    end = run["four_step"][-1]["t"]  # the grid ends where the queries end (path.t_end, else 1 - eps)
    to_end = next(c for c in run["cumulative"] if abs(min(c["T"], 1 - 1e-5) - end) < 1e-9)
    assert abs(sum(p["exact"] for p in run["four_step"]) - to_end["exact"]) < 1e-6  # the intervals tile
    assert all(np.isfinite([p["isa"], p["dre"]]).all() for p in run["cumulative"] + run["four_step"])
    weight = res["weight"]
    assert weight[-1] < 1e-3 * weight[0]  # the CTSM weight vanishes as t -> 1 (T = 0.25 vs 1 - eps)
    _assert_served_from_cache("isadre_horizon.py", root, "--seeds", "0")


def test_isadre_target_noise_quick(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    _run("isadre_target_noise.py", "--root", str(root))
    ratio = _results(root, "isadre_target_noise")["ratio"]
    old, new = (
        next(v for k, v in ratio.items() if k.startswith(p)) for p in ("bridge, old", "bridge, default")
    )
    assert all(old[t] > 10 * new[t] for t in ("0.1", "0.5", "0.9"))  # the wider bridge is far less noisy
    gauss = next(v for k, v in ratio.items() if k.startswith("Gaussian"))
    assert (
        gauss["0.5"] < gauss["0.9"]
    )  # with the Gaussian reference the noise grows towards t = 1 (1/alpha_t^2)
    _assert_served_from_cache("isadre_target_noise.py", root)
    log = _run("isadre_target_noise.py", "--root", str(root), "--dim", "4")  # another data spec: recomputed
    assert "9 of 9 runs to compute" in log


def test_reczero_quick(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    _run("reczero.py", "--root", str(root), "--threads", "1")
    assert {p.name for p in tmp_path.iterdir()} == {"bench"}  # writes only under its output root
    res = _results(root, "reczero")
    assert {"MF", "SFT-only", "RecOne", "zero-shot", "RecZero"} <= set(res["eval"])
    assert all(0.0 < res["eval"][k]["mae"] < 4.0 for k in res["eval"])
    assert res["speed"]["ours_mean"] > 0 and res["speed"]["stock_mean"] > 0
    page = (root / "reczero-quick" / "docs" / "reczero.md").read_text()
    assert "num_examples 16, epochs 1, batch_size 8, learning_rate 0.001" in page  # rendered from the config
    assert "Machine: " in page and res["readme_row"].startswith("| RecZero / RecOne |")
    _assert_served_from_cache("reczero.py", root, "--threads", "1")
