"""``mercato mal`` verbs end to end on tiny files; PyMAL output parsing; the quick benchmark (integration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mercato.mal.cli import main
from mercato.mal.pymal import parse_pymal_output, pymal_available, run_pymal
from mercato.mal.sim import SimConfig, simulate_to_mac

ROOT = Path(__file__).resolve().parents[2]
PYMAL = ROOT / "scratch" / "PyMAL"
TINY = ["--n-clicks", "1500"]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("MERCATO_NO_PROGRESS", "1")


@pytest.mark.integration
def test_simulate_train_eval_resume(tmp_path, capsys):
    data = tmp_path / "mac"
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("n_users: 80\nn_items: 50\nn_categories: 5\nn_brands: 6\nn_shops: 7\nn_days: 4\n")
    assert main(["simulate", "--config", str(cfg), *TINY, "--output-dir", str(data)]) == 0
    assert main(["simulate", "--config", str(cfg), *TINY, "--output-dir", str(data)]) == 0
    assert "already simulated" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["simulate", "--config", str(cfg), "--n-clicks", "1600", "--output-dir", str(data)])
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--model", "MAL", "--epochs", "1", "--batch-size", "256"]
    assert main([*args, "--output-dir", str(run)]) == 0
    trained = json.loads((run / "metrics.json").read_text())["test"]
    with pytest.raises(SystemExit):  # an existing checkpoint is never overwritten silently
        main([*args, "--output-dir", str(run)])
    assert main([*args, "--output-dir", str(run), "--resume"]) == 0
    assert main(["eval", "--run-dir", str(run)]) == 0
    evaluated = json.loads((run / "eval.json").read_text())
    assert evaluated["auc"] == pytest.approx(trained["auc"]) and evaluated["rows"] == trained["rows"]


def test_attribute_and_bad_inputs(tmp_path, capsys):
    paths = tmp_path / "paths.csv"
    paths.write_text("path;total_conversions;total_null\nA > B;1;0\nB > C;0;1\nA;0;1\n")
    assert main(["attribute", str(paths), "--output-dir", str(tmp_path / "out")]) == 0
    shares = json.loads((tmp_path / "out" / "attribution.json").read_text())["shares"]
    assert shares["markov"] == pytest.approx({"A": 1 / 3, "B": 2 / 3, "C": 0.0})
    assert shares["last"] == {"A": 0.0, "B": 1.0, "C": 0.0}
    bad = tmp_path / "bad.csv"
    bad.write_text("path;total_conversions;total_null\nA;-1;0\n")
    with pytest.raises(SystemExit):
        main(["attribute", str(bad)])
    assert "column 'total_conversions' row 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tmp_path / "nothing")])
    assert "vocabs" in capsys.readouterr().err
    assert main(["nope"]) == 2


def test_parse_pymal_output():
    text = (
        "Testing/View: mta     , Testing/AUC: 0.61234, Testing/GAUC: 0.55000, Valid Users: 500\n"
        "Testing/View: last    , Testing/AUC: 0.70000, Testing/GAUC: 0.60001, Valid Users: 599\n"
    )
    assert parse_pymal_output(text) == {
        "mta": {"auc": 0.61234, "gauc": 0.55},
        "last": {"auc": 0.7, "gauc": 0.60001},
    }
    assert "not a PyMAL checkout" in pymal_available("/nonexistent")


@pytest.mark.integration
def test_pymal_runs_on_simulated_files(tmp_path):
    if pymal_available(PYMAL):
        pytest.skip(f"{pymal_available(PYMAL)} (fetch github.com/alimama-tech/PyMAL into scratch/PyMAL)")
    data = tmp_path / "mac"
    simulate_to_mac(SimConfig(n_clicks=4000, n_users=200, n_items=100), data)
    res = run_pymal(PYMAL, data, tmp_path / "work", model="NATAL", timeout_s=300)
    assert set(res.metrics) == {"last", "first", "linear", "mta"}
    assert 0.0 <= res.metrics["last"]["auc"] <= 1.0 and res.train_wall_s > 0


@pytest.mark.integration
def test_quick_benchmark(tmp_path):
    env = {**os.environ, "MERCATO_NO_PROGRESS": "1", "MERCATO_MAL_DATA": str(tmp_path / "data")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "mal.py"), "--quick", "--root", str(tmp_path / "bench")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    block = (tmp_path / "bench" / "mal-quick" / "docs" / "results.md").read_text()
    assert "Goal: short paths: MAL − Base GAUC" in block and "| short | last | MAL |" in block
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "runs to compute" not in again.stderr
