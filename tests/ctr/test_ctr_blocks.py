from __future__ import annotations

import itertools

import pytest
import torch

from mercato.ctr.blocks import MLP, CrossNetV2, fm_interaction, pool_tokens, pooled_width


def test_fm_interaction_matches_pairwise_loop() -> None:
    torch.manual_seed(0)
    emb = torch.randn(5, 4, 3, dtype=torch.float64)  # (B, F, D)
    expected = torch.zeros(5, dtype=torch.float64)
    for i, j in itertools.combinations(range(4), 2):
        expected += (emb[:, i] * emb[:, j]).sum(-1)
    assert torch.allclose(fm_interaction(emb), expected)


def test_fm_interaction_hand_value() -> None:
    # fields (1, 2), (3, 4), (0, 1): <a,b> + <a,c> + <b,c> = 11 + 2 + 4 = 17
    emb = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]]])
    assert fm_interaction(emb).tolist() == [17.0]


def test_crossnet_full_rank_hand_check() -> None:
    net = CrossNetV2(input_dim=2, num_layers=1)
    with torch.no_grad():
        net.weights[0].weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
        net.bias[0].copy_(torch.tensor([0.5, -1.0]))
    x0 = torch.tensor([[1.0, 2.0]])
    # W x0 + b = (1 + 4 + 0.5, 2 - 1) = (5.5, 1); x1 = x0 * (5.5, 1) + x0 = (6.5, 4)
    assert net(x0).tolist() == [[6.5, 4.0]]


def test_crossnet_two_layers_use_x0() -> None:
    net = CrossNetV2(input_dim=1, num_layers=2)
    with torch.no_grad():
        for w in net.weights:
            w.weight.fill_(1.0)
    x0 = torch.tensor([[2.0]])
    # x1 = 2 * 2 + 2 = 6; x2 = x0 * x1 + x1 = 2 * 6 + 6 = 18
    assert net(x0).item() == 18.0


def test_crossnet_low_rank_mixture_shape_and_single_expert_reduces() -> None:
    torch.manual_seed(0)
    net = CrossNetV2(input_dim=6, num_layers=2, low_rank=3, num_experts=4)
    x = torch.randn(5, 6)
    assert net(x).shape == (5, 6)
    # with one expert the gate is 1: x1 = x0 * (U tanh(C tanh(V^T x0)) + b) + x0
    one = CrossNetV2(input_dim=6, num_layers=1, low_rank=3, num_experts=1)
    u, v, c = one.u[0][0], one.v[0][0], one.c[0][0]
    expected = x * (torch.tanh(torch.tanh(x @ v) @ c.T) @ u.T + one.bias[0]) + x
    assert torch.allclose(one(x), expected, atol=1e-6)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_mlp_shapes_and_layers(norm: str) -> None:
    mlp = MLP(8, [16, 4], output_dim=1, dropout=0.1, norm=norm)  # type: ignore[arg-type]
    assert mlp(torch.randn(3, 8)).shape == (3, 1)
    kinds = {type(m).__name__ for m in mlp.modules()}
    assert ("BatchNorm1d" in kinds) == (norm == "batch")
    assert ("LayerNorm" in kinds) == (norm == "layer")
    assert "Dropout" in kinds
    assert MLP(8, []).output_dim == 8


def test_mlp_rejects_unknown_activation() -> None:
    with pytest.raises(ValueError, match="valid"):
        MLP(4, [4], activation_name="swishy")


def test_pool_tokens_sum_and_concat_by_hand() -> None:
    z = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # (B=1, F=3, d=2)
    torch.testing.assert_close(pool_tokens(z, "sum"), torch.tensor([[9.0, 12.0]]))
    torch.testing.assert_close(pool_tokens(z, "concat"), torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]))
    assert pooled_width("sum", 3, 2) == 2 and pooled_width("concat", 3, 2) == 6
    with pytest.raises(ValueError, match="pooling"):
        pool_tokens(z, "mean")  # type: ignore[arg-type]
