from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from ctr_testdata import make_frame

from mercato.ctr.cli import main
from mercato.data import DataError, ctr_from_table

TINY = [
    "--embed-dim",
    "4",
    "--hidden-units",
    "[8]",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--progress",
    "false",
]
FILE_ARGS = ["--categorical", "user_id,item_id,gender", "--numeric", "year", "--multihot", "genres"]


def _csv(tmp_path: Path, df: pd.DataFrame | None = None, name: str = "clicks.csv") -> Path:
    path = tmp_path / name
    (make_frame(96, 0) if df is None else df).to_csv(path, index=False)
    return path


def test_train_then_eval_on_a_user_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    argv = ["train", "--model", "deepfm", "--data", str(data), *FILE_ARGS, "--time", "timestamp"]
    assert main([*argv, *TINY, "--output-dir", str(run)]) == 0
    for name in ("config.yaml", "metrics.json", "schema.json", "run.json", "checkpoint", "best"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and 0.0 <= metrics["test"]["auc"] <= 1.0
    assert "test" in capsys.readouterr().out
    assert main(["eval", "--run-dir", str(run)]) == 0
    evaluated = json.loads((run / "eval.json").read_text())
    assert evaluated["test"]["auc"] == pytest.approx(metrics["test"]["auc"])


def test_unknown_model_lists_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "xgboost"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown model 'xgboost'" in err and "lr, fm, deepfm, dcnv2" in err


def test_misspelled_yaml_key_names_key_and_valid_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("embed_dimm: 8\nlr: 0.01\n")
    with pytest.raises(SystemExit):
        main(["train", "--model", "dcnv2", "--config", str(cfg), "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert "embed_dimm" in err and "did you mean 'embed_dim'" in err
    assert "valid keys:" in err and "num_cross_layers" in err and "batch_size" in err
    assert not (tmp_path / "run").exists()


def _bad_files(tmp_path: Path) -> list[tuple[Path, str]]:
    good = make_frame(48, 0)
    missing = _csv(tmp_path, good.drop(columns=["gender"]), "missing.csv")
    text_label = good.astype({"label": object})
    text_label.loc[5, "label"] = "yes"
    nan_year = good.copy()
    nan_year.loc[3, "year"] = float("nan")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    return [
        (missing, "gender"),
        (_csv(tmp_path, text_label, "text_label.csv"), "label"),
        (_csv(tmp_path, nan_year, "nan_year.csv"), "year"),
        (empty, "empty"),
    ]


def test_bad_files_fail_in_ctr_from_table(tmp_path: Path) -> None:
    for path, what in _bad_files(tmp_path):
        with pytest.raises(DataError) as exc:
            ctr_from_table(
                path, categorical=["user_id", "item_id", "gender"], numeric=["year"], multihot=["genres"]
            )
        assert str(path) in str(exc.value) and what in str(exc.value)


def test_bad_files_fail_in_cli_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path, what in _bad_files(tmp_path):
        run = tmp_path / f"run_{path.stem}"
        with pytest.raises(SystemExit) as exc:
            main(
                [
                    "train",
                    "--model",
                    "lr",
                    "--data",
                    str(path),
                    *FILE_ARGS,
                    "--output-dir",
                    str(run),
                    *TINY[4:],
                ]
            )
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert str(path) in err and what in err
        written = list(run.rglob("*")) if run.exists() else []
        assert not written, written


def test_eval_on_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--run-dir", str(tmp_path)])
    assert "not a CTR run folder" in capsys.readouterr().err
