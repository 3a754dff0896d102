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


def _train_argv(data: Path, run: Path, *extra: str, model: str = "deepfm") -> list[str]:
    return [
        "train",
        "--model",
        model,
        "--data",
        str(data),
        *FILE_ARGS,
        *TINY,
        "--output-dir",
        str(run),
        *extra,
    ]


def test_label_column_as_a_feature_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    argv = ["train", "--data", str(data), "--categorical", "user_id,item_id,label", "--label", "label"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, *TINY, "--output-dir", str(run)])
    assert exc.value.code == 2
    assert "column 'label' is the label (--label) and cannot also be a feature" in capsys.readouterr().err
    assert not run.exists()


def test_rerun_without_resume_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    assert main(_train_argv(data, run)) == 0
    before = (run / "checkpoint" / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit):
        main(_train_argv(data, run))
    err = capsys.readouterr().err
    assert "already holds the checkpoint" in err and "--resume" in err and "--output-dir" in err
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == before


def test_resume_with_changed_lr_or_model_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    assert main(_train_argv(data, run)) == 0
    config = (run / "config.yaml").read_text()
    with pytest.raises(SystemExit):
        main(_train_argv(data, run, "--resume", "--lr", "0.5"))
    assert "config differs from the run's: lr: 0.001 -> 0.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_train_argv(data, run, "--resume", model="dcnv2"))
    assert "trained with --model deepfm, not dcnv2" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == config  # nothing rewritten
    assert main(_train_argv(data, run, "--resume", "--epochs", "3")) == 0  # more epochs: allowed


@pytest.mark.parametrize("name", ["model.safetensors", "state.json"])
def test_resume_from_truncated_checkpoint_names_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    assert main(_train_argv(data, run)) == 0
    path = run / "checkpoint" / name
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(SystemExit) as exc:
        main(_train_argv(data, run, "--resume", "--epochs", "3"))
    assert exc.value.code == 2
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--epochs", "0", "epochs must be >= 1, got 0"),
        ("--epochs", "-1", "epochs must be >= 1, got -1"),
        ("--lr", "0", "lr must be > 0"),
        ("--embed-dim", "0", "embed_dim must be >= 1, got 0"),
        ("--patience", "-1", "patience must be >= 0, got -1"),
        ("--dropout", "1.5", "dropout must lie in [0, 1), got 1.5"),
        ("--batch-size", "0", "batch_size must be >= 1, got 0"),
    ],
)
def test_bad_config_values_name_the_key_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(_train_argv(data, run, flag, value))
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_errors_after_loading_leave_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = _csv(tmp_path, make_frame(6, 0)), tmp_path / "run"  # too few rows: no validation rows
    with pytest.raises(SystemExit):
        main(_train_argv(data, run))
    assert "validation split is empty" in capsys.readouterr().err
    assert not run.exists()
    data = _csv(tmp_path)
    with pytest.raises(SystemExit):
        main(_train_argv(data, run, "--monitor", "cvr/auc", "--metrics", "[auc]"))  # fails inside fit
    assert "monitor 'cvr/auc' is not an evaluated metric" in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_gpu_leaves_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    with pytest.raises(SystemExit):
        main(_train_argv(data, run, "--device", "cuda"))
    assert "CUDA is not available" in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.parametrize("model", ["autoint", "transformer"])
def test_every_model_is_selectable(tmp_path: Path, model: str) -> None:
    data, run = _csv(tmp_path), tmp_path / "run"
    argv = ["train", "--model", model, "--data", str(data), *FILE_ARGS, "--embed-dim", "4", "--epochs", "1"]
    extra = ["--num-heads", "1", "--attn-dim", "4"] if model == "autoint" else ["--num-heads", "1"]
    assert main([*argv, *extra, "--batch-size", "32", "--progress", "false", "--output-dir", str(run)]) == 0
    assert main(["eval", "--run-dir", str(run)]) == 0
