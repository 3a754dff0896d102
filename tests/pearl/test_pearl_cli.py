"""``mercato pearl simulate | train | eval`` on a tiny market, resumable training, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mercato.cli import main

TINY = ["--sim.n_steps", "6", "--sim.n_impressions", "240", "--sim.n_advertisers", "4", "--data.n_episodes", "2",
        "--pearl.planner.bc_steps", "3", "--pearl.evaluator.steps", "3", "--pearl.invdyn.steps", "3",
        "--pearl.search_steps", "4", "--pearl.rollouts", "4", "--pearl.planner.batch", "4"]  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_NO_PROGRESS", "1")


def test_simulate_writes_valid_parquet(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ["--n_steps", "6", "--n_impressions", "240", "--n_advertisers", "4"]
    assert main(["pearl", "simulate", "--episodes", "2", "--output-dir", str(out), *args]) == 0
    from mercato.pearl.data import load_parquet

    assert load_parquet(out / "trajectories.parquet").n == 8


@pytest.mark.integration  # trains every stage of a tiny Pearl run (a few seconds)
def test_train_eval_and_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["pearl", "train", "--output-dir", str(run), "--save-every", "2", *TINY]) == 0
    assert json.loads((run / "metrics.json").read_text())["L_p"] >= 0
    state = json.loads((run / "planner" / "state.json").read_text())["state"]
    assert state["search_step"] == 4
    # a second call resumes from the checkpoint: nothing is left to search
    assert main(["pearl", "train", "--output-dir", str(run), *TINY]) == 0
    assert main(["pearl", "eval", "--run-dir", str(run), "--episodes", "1"]) == 0
    rows = json.loads((run / "eval.json").read_text())["eval"]
    assert {r["method"] for r in rows} == {"Pearl", "PID"}
    assert all(r["cost_ratio"] <= 1.0 + 1e-9 for r in rows)


def test_bad_data_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.parquet"
    bad.write_text("nope")
    with pytest.raises(SystemExit):
        main(["pearl", "train", "--data", str(bad), "--output-dir", str(tmp_path / "r"), *TINY])
    assert "x.parquet: not a readable Parquet file" in capsys.readouterr().err


def test_unknown_key_and_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["pearl", "train", "--pearl.bogus", "1"])
    assert "unknown config key 'bogus'" in capsys.readouterr().err
    assert main(["pearl", "frobnicate"]) == 2
