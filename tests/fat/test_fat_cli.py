"""`mercato fat train|eval|bench` on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mercato.fat.cli import main

TINY = ["--data", "synthetic", "--synthetic-rows", "400", "--synthetic-fields", "3", "--epochs", "1"]
SMALL = ["--embed-dim", "4", "--num-heads", "2", "--num-bases", "2", "--top-k", "1", "--head-units", "[4]"]


def test_train_then_eval_agree_on_hypernetwork_and_exported_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MERCATO_NO_PROGRESS", "1")
    run = tmp_path / "run"
    assert main(["train", *TINY, *SMALL, "--num-threads", "1", "--output-dir", str(run)]) == 0
    for name in (
        "config.yaml",
        "run.json",
        "schema.json",
        "metrics.json",
        "modulation.png",
        "export/model.safetensors",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["auc"] <= 1.0 and metrics["bayes_auc"] > 0.5
    assert main(["eval", "--run-dir", str(run)]) == 0
    rows = json.loads((run / "eval.json").read_text())
    assert [r["weights"] for r in rows] == ["best", "export"]
    assert rows[0]["auc"] == pytest.approx(rows[1]["auc"]) and rows[0]["logloss"] == pytest.approx(
        rows[1]["logloss"]
    )
    assert rows[0]["auc"] == pytest.approx(metrics["test"]["auc"])


def test_bench_lists_every_model_and_the_ceiling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_NO_PROGRESS", "1")
    out = tmp_path / "bench"
    args = [
        "bench",
        *TINY,
        "--models",
        "fat,autoint",
        "--width",
        "4",
        "--num-threads",
        "1",
        "--output-dir",
        str(out),
    ]
    assert main(args) == 0
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["fat", "autoint", "bayes-optimal"]


def test_bad_input_gives_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["train", *TINY, "--num-base", "3"])
    assert err.value.code == 2 and "did you mean 'num_bases'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", *TINY, "--models", "fat,gpt"])
    assert "unknown models ['gpt']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--run-dir", str(tmp_path)])
    assert "not a finished FAT run folder" in capsys.readouterr().err


def test_rerun_and_bad_values_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MERCATO_NO_PROGRESS", "1")
    with pytest.raises(SystemExit):
        main(["train", *TINY, *SMALL, "--dropout", "1.5", "--output-dir", str(tmp_path / "bad")])
    assert "dropout must lie in [0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "run"
    assert main(["train", *TINY, *SMALL, "--output-dir", str(run)]) == 0
    with pytest.raises(SystemExit):
        main(["train", *TINY, *SMALL, "--output-dir", str(run)])
    assert "already holds the checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", *TINY, *SMALL, "--lr", "0.5", "--resume", "--output-dir", str(run)])
    assert "lr: 0.001 -> 0.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # refused before anything is written: the run's config is unchanged
        main(["train", *TINY, *SMALL, "--synthetic-rows", "999", "--resume", "--output-dir", str(run)])
    assert "synthetic_rows" in capsys.readouterr().err
    assert "lr: 0.001" in (run / "config.yaml").read_text()


def test_errors_after_loading_leave_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", *TINY, *SMALL, "--batch-size", "0", "--output-dir", str(tmp_path / "b0")])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["train", *TINY, *SMALL, "--device", "cuda:7", "--output-dir", str(tmp_path / "gpu")])
    assert "cuda" in capsys.readouterr().err.lower()
    assert not (tmp_path / "b0").exists() and not (tmp_path / "gpu").exists()
