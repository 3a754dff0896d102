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


def test_isadre_quick(tmp_path: Path) -> None:
    out = tmp_path / "isadre.json"
    _run("isadre.py", "--out", str(out))
    res = json.loads(out.read_text())
    cell = res["10"]["0"]  # d = 10, seed 0: true MI 2.5; a collapsed fit gives ~0
    for key in ("isa@1", "isa@4", "dre_inf@100", "clf"):
        assert abs(cell[key]["mi"] - 2.5) < 0.75, (key, cell[key])  # within 30 %
    assert cell["isa@1"]["nfe"] < cell["dre_inf@100"]["nfe"]
    assert abs(cell["exact"]["mi"] - 2.5) < 0.25  # the true log ratio on 2000 test points (std about 0.04)


def test_isadre_target_noise_quick(tmp_path: Path) -> None:
    out = tmp_path / "noise.json"
    _run("isadre_target_noise.py", "--out", str(out))
    ratio = json.loads(out.read_text())["ratio"]
    old, new = (
        next(v for k, v in ratio.items() if k.startswith(p)) for p in ("bridge, old", "bridge, default")
    )
    assert all(old[t] > 10 * new[t] for t in ("0.1", "0.5", "0.9"))  # the wider bridge is far less noisy
    gauss = next(v for k, v in ratio.items() if k.startswith("Gaussian"))
    assert (
        gauss["0.5"] < gauss["0.9"]
    )  # with the Gaussian reference the noise grows towards t = 1 (1/alpha_t^2)


def test_isadre_horizon_quick(tmp_path: Path) -> None:
    out = tmp_path / "horizon.json"
    _run("isadre_horizon.py", "--quick", "--seeds", "0", "--out", str(out))
    res = json.loads(out.read_text())
    run = res["seeds"]["0"]
    full = run["cumulative"][-1]
    assert abs(full["exact"] - res["dim"] / 4) < 0.25  # the exact path integral recovers the MI (2000 points)
    end = run["four_step"][-1]["t"]  # the grid ends where the queries end (path.t_end, else 1 - eps)
    to_end = next(c for c in run["cumulative"] if abs(min(c["T"], 1 - 1e-5) - end) < 1e-9)
    assert (
        abs(sum(p["exact"] for p in run["four_step"]) - to_end["exact"]) < 1e-6
    )  # the intervals tile [eps, end]
    assert all(np.isfinite([p["isa"], p["dre"]]).all() for p in run["cumulative"] + run["four_step"])
    weight = res["weight"]
    assert weight[-1] < 1e-3 * weight[0]  # the CTSM weight vanishes as t -> 1 (T = 0.25 vs 1 - eps)
    # a split run: the merged part's seed is taken as it is (marked here), not fitted again
    run["marker"] = "from the part"
    out.write_text(json.dumps(res))
    merged = tmp_path / "merged.json"
    _run("isadre_horizon.py", "--quick", "--seeds", "0", "--merge", str(out), "--out", str(merged))
    assert json.loads(merged.read_text())["seeds"]["0"]["marker"] == "from the part"


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


def test_reczero_quick(tmp_path: Path) -> None:
    _run("reczero.py", "--run-dir", str(tmp_path), "--threads", "1")
    res = json.loads((tmp_path / "results.json").read_text())
    assert {"MF", "SFT-only", "RecOne", "zero-shot", "RecZero"} <= set(res["eval"])
    assert all(0.0 < res["eval"][k]["mae"] < 4.0 for k in res["eval"])
    assert res["speed"]["ours_mean"] > 0 and res["speed"]["stock_mean"] > 0


def test_field_softmax_quick(tmp_path: Path) -> None:
    log = _run("field_softmax.py", "--root", str(tmp_path))
    assert "torch.softmax" in log and "field_softmax" in log
    assert "| (256, 4, 10, 10) |" in (tmp_path / "field_softmax-quick" / "docs" / "ctr.md").read_text()
    _assert_served_from_cache("field_softmax.py", tmp_path)


def test_isadre_budget_quick(tmp_path: Path) -> None:
    out = tmp_path / "budget.json"
    _run("isadre_budget.py", "--out", str(out))
    cells = json.loads(out.read_text())["cells"]
    assert set(cells) == {"10/101/150x1024", "10/101/400x1024"}  # one cell per budget (steps x batch)
    for key in ("isa@1", "isa@4", "dre_inf@100"):
        assert abs(cells["10/101/400x1024"][key]["mi"] - 2.5) < 0.75, (
            key,
            cells["10/101/400x1024"][key],
        )  # within 30 %


def test_isadre_budget_cell_fits_with_its_steps_and_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell keyed '300x256' trains with 300 steps of 256 pairs, not the benchmark's own numbers."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("isadre_budget", ROOT / "benchmarks" / "isadre_budget.py")
    assert spec is not None and spec.loader is not None
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)
    seen: dict[str, int] = {}

    def fake_run_one(setting: dict, d: int, seed: int, methods: list[str]) -> dict:
        seen.update(n_iters=setting["train"]["n_iters"], batch_size=setting["train"]["batch_size"])
        return {key: {"mi": 1.0, "fit_seconds": 0.0} for key, _ in budget.COLUMNS}

    monkeypatch.setattr(budget.bench, "run_one", fake_run_one)
    budget.run_cell(budget.bench.QUICK, 10, 101, *budget.parse_budget("300x256"))
    assert seen == {"n_iters": 300, "batch_size": 256}
    assert budget.bench.QUICK["train"]["batch_size"] != 256  # the benchmark's setting is left as it was
    with pytest.raises(ValueError, match="STEPSxBATCH"):
        budget.parse_budget("2000")


def test_isadre_paired_comparison_pairs_the_seeds() -> None:
    """The paired line subtracts per seed (not the means' difference alone) and counts the seeds won."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("isadre_bench", ROOT / "benchmarks" / "isadre.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sq = {"0": (0.1, 0.3), "1": (0.5, 0.4), "2": (0.2, 0.6)}  # seed: (ISA-DRE, DRE-inf) squared errors
    results = {"40": {s: {"isa@1": {"sq_err": a}, "dre_inf@100": {"sq_err": b}} for s, (a, b) in sq.items()}}
    results["40"]["3"] = {"isa@1": {"sq_err": 9.0}}  # a seed without the baseline is left out, not paired
    diff = np.array([-0.2, 0.1, -0.4])
    se = diff.std(ddof=1) / np.sqrt(3)
    assert (
        bench.paired_comparison(results, 40)
        == f"d=40: {diff.mean():+.2f} ± {se:.2f} (lower or equal on 2 of 3 seeds)"
    )
    assert bench.paired_comparison(results, 80) == "d=80: –"
