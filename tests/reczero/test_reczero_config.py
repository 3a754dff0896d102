"""Strict config loading and --help rendering of the RecZero configs."""

from __future__ import annotations

import pytest

from mercato.core.cli import config_help
from mercato.core.config import ConfigError, load_config
from mercato.reczero.config import GRPOStageConfig, RecZeroConfig


def test_nested_overrides_and_defaults():
    cfg = load_config(
        RecZeroConfig, overrides=["--grpo.steps", "3", "--method", "reczero", "--model", "tiny"]
    )
    assert cfg.grpo.steps == 3 and cfg.method == "reczero" and cfg.model == "tiny"
    assert cfg.grpo.num_generations == 8 and cfg.grpo.beta == 0.0 and cfg.reward.max_error == 4.0


def test_unknown_key_and_bad_choice_raise():
    with pytest.raises(ConfigError, match="num_generations"):
        load_config(RecZeroConfig, overrides=["--grpo.num_generation", "4"])
    with pytest.raises(ConfigError, match="reczero"):
        load_config(RecZeroConfig, overrides=["--method", "recthree"])


def test_help_names_paper_symbols():
    text = config_help(GRPOStageConfig)
    assert "--num-generations (8): G, rollouts per prompt" in text
