from dataclasses import dataclass, field
from typing import Literal

import pytest

from mercato.core.cli import config_help
from mercato.core.config import ConfigError, config_to_dict, load_config, parse_overrides


@dataclass
class Inner:
    depth: int = 2  # L, number of layers


@dataclass
class Cfg:
    lr: float = 1e-3  # learning rate
    hidden: list[int] = field(default_factory=lambda: [64, 32])  # MLP widths
    mode: Literal["mul", "add"] = "mul"  # modulation mode
    note: str | None = None  # free text
    inner: Inner = field(default_factory=Inner)  # nested block


def test_misspelled_key_in_file_names_the_key_and_valid_keys(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("lr: 0.1\nhiden: [8]\n")
    with pytest.raises(ConfigError) as err:
        load_config(Cfg, cfg_file)
    msg = str(err.value)
    assert "'hiden'" in msg and "cfg.yaml" in msg
    assert "did you mean 'hidden'" in msg
    for key in ("lr", "hidden", "mode", "note", "inner"):
        assert key in msg


def test_wrong_type_names_the_field():
    with pytest.raises(ConfigError, match="field 'lr'.*expected float"):
        load_config(Cfg, overrides={"lr": "fast"})
    with pytest.raises(ConfigError, match=r"field 'hidden'\[1\].*expected int"):
        load_config(Cfg, overrides={"hidden": [1, "x"]})
    with pytest.raises(ConfigError, match="one of"):
        load_config(Cfg, overrides=["--mode", "other"])


def test_file_then_command_line_overrides_nested(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("lr: 0.1\ninner:\n  depth: 5\n")
    cfg = load_config(Cfg, cfg_file, ["--inner.depth", "7", "--hidden=16,8", "--note", "hi"])
    assert cfg.lr == 0.1 and cfg.inner.depth == 7 and cfg.hidden == [16, 8] and cfg.note == "hi"
    assert config_to_dict(cfg) == {
        "lr": 0.1,
        "hidden": [16, 8],
        "mode": "mul",
        "note": "hi",
        "inner": {"depth": 7},
    }


def test_scalar_for_a_list_field_is_a_one_item_list():
    assert load_config(Cfg, overrides=["--hidden", "8"]).hidden == [8]
    with pytest.raises(ConfigError, match="expected int"):
        load_config(Cfg, overrides=["--hidden", "wide"])


def test_unknown_nested_key_is_rejected():
    with pytest.raises(ConfigError, match="'dept'.*valid keys: depth"):
        load_config(Cfg, overrides=["--inner.dept", "3"])


def test_parse_overrides_flags():
    assert parse_overrides(["--resume", "--no-shuffle", "--lr", "1e-3"]) == {
        "resume": True,
        "shuffle": False,
        "lr": 1e-3,
    }
    with pytest.raises(ConfigError, match="expected '--key value'"):
        parse_overrides(["lr", "3"])


def test_missing_or_non_mapping_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Cfg, bad)


def test_config_help_lists_fields_with_comments():
    text = config_help(Cfg)
    assert "--lr (1e-3): learning rate" in text
    assert "--mode" in text and "modulation mode" in text
