"""Hand-computed checks of FAT's pure functions (modulation, routing, composition, balance loss) and config."""

from __future__ import annotations

import math

import pytest
import torch

from mercato.core.cli import config_help
from mercato.core.config import ConfigError, load_config
from mercato.fat import (
    FATConfig,
    compose_bases,
    field_decomposed_attention,
    load_balance_loss,
    modulate,
    top_k_routing,
)


def test_modulate_modes_by_hand() -> None:
    s = torch.tensor([[[[2.0, -1.0], [0.5, 4.0]]]])  # (B=1, H=1, F=2, F=2)
    w = torch.tensor([[[0.5, 2.0], [-1.0, 0.0]]])  # (1, F, F)
    assert modulate(s, w, "mul").flatten().tolist() == [1.0, -2.0, -0.5, 0.0]
    assert modulate(s, w, "one_plus").flatten().tolist() == [3.0, -3.0, 0.0, 4.0]
    assert modulate(s, w, "add").flatten().tolist() == [2.5, 1.0, -0.5, 4.0]
    with pytest.raises(ValueError, match="unknown modulation"):
        modulate(s, w, "pow")  # type: ignore[arg-type]


def test_field_decomposed_attention_by_hand() -> None:
    # one head, two fields, d_k = 1: logits q_i k_j / 1 modulated by w; softmax over keys
    q = torch.tensor([1.0, 2.0]).view(1, 1, 2, 1)
    k = torch.tensor([1.0, 0.0]).view(1, 1, 2, 1)
    v = torch.tensor([10.0, 20.0]).view(1, 1, 2, 1)
    w = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])  # query field 1 doubles its logit on key field 0
    out, attn = field_decomposed_attention(q, k, v, w, "one_plus")
    a0 = math.exp(1) / (math.exp(1) + 1)  # row 0: logits (1, 0)
    a1 = math.exp(4) / (math.exp(4) + 1)  # row 1: logits (2 * 2, 0)
    assert attn[0, 0, 0, 0].item() == pytest.approx(a0)
    assert out[0, 0, 1, 0].item() == pytest.approx(10 * a1 + 20 * (1 - a1))
    masked, attn_m = field_decomposed_attention(
        q, k, v, w, "one_plus", key_mask=torch.tensor([[False, True]])
    )
    assert attn_m[..., 0].abs().max().item() == 0.0 and masked.flatten().tolist() == [20.0, 20.0]


def test_top_k_routing_by_hand() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 5.0, 5.0]])
    w = top_k_routing(logits, 2)
    e = math.exp(1) / (1 + math.exp(1))
    torch.testing.assert_close(w[0], torch.tensor([0.0, e, 1 - e, 0.0]))
    torch.testing.assert_close(w[1], torch.tensor([0.0, 0.0, 0.5, 0.5]))
    torch.testing.assert_close(top_k_routing(logits, 0), torch.softmax(logits, -1))


def test_compose_bases_by_hand() -> None:
    bases = torch.stack([torch.eye(2), 2 * torch.ones(2, 2)])  # (M=2, 2, 2)
    weights = torch.tensor([[1.0, 0.0], [0.25, 0.75]])  # (F=2, M=2)
    w = compose_bases(weights, bases)
    torch.testing.assert_close(w[0], torch.eye(2))
    torch.testing.assert_close(w[1], torch.tensor([[1.75, 1.5], [1.5, 1.75]]))


def test_load_balance_loss_is_one_when_uniform_and_grows_on_collapse() -> None:
    uniform = torch.zeros(6, 4)
    assert load_balance_loss(uniform, top_k_routing(uniform, 2)).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[9.0, 0.0, 0.0, 0.0]]).repeat(6, 1)
    assert load_balance_loss(collapsed, top_k_routing(collapsed, 1)).item() > 3.5
    spread = torch.eye(4) * 9.0  # each field prefers its own basis
    assert load_balance_loss(spread, top_k_routing(spread, 1)).item() == pytest.approx(1.0, abs=1e-3)


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="num_bases"):
        load_config(FATConfig, overrides=["--num-base", "4"])
    with pytest.raises(ConfigError, match="top_k"):
        load_config(FATConfig, overrides=["--top-k", "9", "--num-bases", "4"])
    with pytest.raises(ConfigError, match="modulation"):
        load_config(FATConfig, overrides=["--modulation", "pow"])
    cfg = load_config(
        FATConfig, overrides=["--modulation", "add", "--embed-dim", "32", "--head-units", "16,8"]
    )
    assert (cfg.modulation, cfg.embed_dim, cfg.head_units, cfg.head_width) == ("add", 32, (16, 8), 8)


def test_every_config_field_has_a_help_comment() -> None:
    text = config_help(FATConfig)
    for name in FATConfig.__dataclass_fields__:
        assert f"--{name.replace('_', '-')} (" in text, name
    assert "M, shared bases" in text


@pytest.mark.parametrize(
    ("key", "value"),
    [("embed_dim", 0), ("dropout", 1.5), ("num_layers", 0), ("head_units", (4, 0)), ("ffn_dim", 0)],
)
def test_config_validates_values_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{key} must "):
        FATConfig(**{key: value})  # type: ignore[arg-type]
