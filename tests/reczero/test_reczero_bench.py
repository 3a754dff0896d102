"""mercato.reczero.bench: stage specs, model folders and the README status row rendered from the results."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mercato.reczero import bench
from mercato.reczero.config import RecZeroConfig, SFTStageConfig

ROOT = Path(__file__).resolve().parents[2]


def _block(page: str, name: str) -> str:
    m = re.search(rf"<!-- mercato:begin {name} -->\n(.*?)<!-- mercato:end {name} -->", page, re.S)
    assert m, name
    return m.group(1)


def test_readme_row_is_rendered_from_the_results_table() -> None:
    """The README row says what docs/reczero.md's generated table says, and no more."""
    page = (ROOT / "docs" / "reczero.md").read_text()
    ev = bench.parse_results_table(_block(page, "reczero-results"))
    model = re.search(r"Policy `([^`]+)`", _block(page, "reczero-budget"))
    assert model and set(ev) >= {"global mean", "zero-shot", "SFT-only", "RecZero", "RecOne", "MF"}
    row = bench.readme_row(ev, model.group(1))
    readme = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| RecZero")]
    assert readme == [row]
    assert "row equals zero-shot" in row and "worse than the global mean" in row


def test_readme_row_follows_the_numbers() -> None:
    ev = {
        "global mean": {"mae": 1.0, "rmse": 1.2, "valid_format": None},
        "MF": {"mae": 0.95, "rmse": 1.1, "valid_format": None},
        "user+item bias": {"mae": 0.9, "rmse": 1.1, "valid_format": None},
        "zero-shot": {"mae": 0.98, "rmse": 1.2, "valid_format": 0.0},
        "SFT-only": {"mae": 0.99, "rmse": 1.3, "valid_format": 1.0},
        "RecZero": {"mae": 0.97, "rmse": 1.2, "valid_format": 0.5},
        "RecOne": {"mae": 0.97, "rmse": 1.3, "valid_format": 0.99},
    }
    row = bench.readme_row(ev, "m")
    assert "RecOne misses the paper's goal" in row  # -2 % is not -5 %
    assert "worse than the global mean" not in row and "learned nothing" not in row
    assert "RecZero MAE 0.970 vs zero-shot 0.980" in row and "lower MAE than every LLM row" in row
    ev["MF"]["mae"] = 0.975  # MF no longer ahead of every LLM row
    assert "classical baselines" not in bench.readme_row(ev, "m")


def test_a_stage_folder_follows_its_config_and_the_code(tmp_path: Path) -> None:
    cfg = RecZeroConfig(model="tiny")
    sft = bench.train_spec(cfg, "recone", "sft", None, tmp_path, "code1")
    assert bench.train_spec(cfg, "recone", "sft", None, tmp_path, "code1") == sft
    other = RecZeroConfig(model="tiny", sft=SFTStageConfig(learning_rate=1e-3))
    assert bench.train_spec(other, "recone", "sft", None, tmp_path, "code1").out_dir != sft.out_dir
    assert bench.train_spec(cfg, "recone", "sft", None, tmp_path, "code2").out_dir != sft.out_dir
    grpo = bench.train_spec(cfg, "recone", "grpo", sft, tmp_path, "code1")
    assert grpo.out_dir != sft.out_dir and bench.final_dir(grpo) == Path(grpo.out_dir) / "grpo" / "final"
    with pytest.raises(ValueError, match="stage must be 'sft' or 'grpo'"):
        bench.train_stage(bench.TrainSpec(cfg, "recone", "ppo", None, str(tmp_path)), _tiny_data())


def _tiny_data():  # type: ignore[no-untyped-def]
    from mercato.reczero.config import DataConfig

    return DataConfig(num_test_users=4, num_val_users=2, num_train_prompts=4)


def test_zero_std_steps_counts_steps_without_any_advantage() -> None:
    hist = [
        {"reward": 0.1, "frac_reward_zero_std": 1.0},
        {"reward": 0.2, "frac_reward_zero_std": 0.5},
        {"loss": 1},
    ]
    assert bench.zero_std_steps({"history": hist}) == {"steps": 2, "all_zero_std": 1}
