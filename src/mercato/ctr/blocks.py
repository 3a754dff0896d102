"""Building blocks shared by CTR models: an MLP tower, the DCNv2 cross network and the FM interaction.

* :class:`MLP`: ``Linear -> [norm] -> activation -> [dropout]`` per hidden layer, optional output layer.
* :class:`CrossNetV2`: DCN-V2 cross layers (Wang et al., 2021, Eq. 1), full-rank or the low-rank mixture of
  experts (DCN-Mix, Eq. 3 of the same paper).
* :func:`fm_interaction`: the factorization-machine second-order term (Rendle, 2010, Eq. 1 rewritten by the
  ``((sum v)^2 - sum v^2) / 2`` identity of Lemma 3.1), linear in the number of fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

__all__ = ["MLP", "CrossNetV2", "Pooling", "activation", "fm_interaction", "pool_tokens", "pooled_width"]

Norm = Literal["none", "batch", "layer"]


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (relu, gelu, silu, tanh, sigmoid, leaky_relu, prelu)."""
    table: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "leaky_relu": nn.LeakyReLU,
        "prelu": nn.PReLU,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(table)}")
    return table[name]()


class MLP(nn.Module):
    """A feed-forward tower.

    Args:
        input_dim: width of the input ``(B, input_dim)``.
        hidden_units: widths of the hidden layers (may be empty: then only the output layer, if any).
        output_dim: width of a final plain linear layer; ``None`` ends at the last hidden layer.
        dropout: dropout probability after each hidden activation.
        activation_name: hidden activation (see :func:`activation`).
        norm: ``"batch"`` or ``"layer"`` normalisation before each hidden activation, or ``"none"``.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_units: Sequence[int],
        output_dim: int | None = None,
        dropout: float = 0.0,
        activation_name: str = "relu",
        norm: Norm = "none",
    ) -> None:
        super().__init__()
        if norm not in ("none", "batch", "layer"):
            raise ValueError(f"unknown norm {norm!r}; valid: none, batch, layer")
        layers: list[nn.Module] = []
        width = input_dim
        for units in hidden_units:
            layers.append(nn.Linear(width, units))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(units))
            elif norm == "layer":
                layers.append(nn.LayerNorm(units))
            layers.append(activation(activation_name))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = units
        if output_dim is not None:
            layers.append(nn.Linear(width, output_dim))
            width = output_dim
        self.net = nn.Sequential(*layers)
        self.output_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, input_dim) -> (B, output_dim)``."""
        return self.net(x)


class CrossNetV2(nn.Module):
    """DCN-V2 cross network: ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`` (Wang et al., 2021, Eq. 1).

    With ``low_rank`` set, each layer is the mixture of low-rank experts of DCN-Mix (Eq. 3):
    ``x_{l+1} = sum_i G_i(x_l) * x_0 * (U_i g(C_i g(V_i^T x_l)) + b_l) + x_l`` with ``g = tanh`` and a
    softmax gate ``G`` over ``num_experts`` experts.

    Args:
        input_dim: d, the width of ``x_0`` (number of fields times embedding width).
        num_layers: L, cross layers.
        low_rank: r, the rank of each expert (``None``: full-rank ``W``).
        num_experts: K, experts per layer in the low-rank mixture.
    """

    def __init__(
        self, input_dim: int, num_layers: int, low_rank: int | None = None, num_experts: int = 1
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.low_rank = low_rank
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(input_dim)) for _ in range(num_layers)])
        if low_rank is None:
            self.weights = nn.ModuleList(
                nn.Linear(input_dim, input_dim, bias=False) for _ in range(num_layers)
            )
        else:
            d, r, k = input_dim, low_rank, num_experts
            self.u = nn.ParameterList([nn.Parameter(torch.empty(k, d, r)) for _ in range(num_layers)])
            self.v = nn.ParameterList([nn.Parameter(torch.empty(k, d, r)) for _ in range(num_layers)])
            self.c = nn.ParameterList([nn.Parameter(torch.empty(k, r, r)) for _ in range(num_layers)])
            for group in (self.u, self.v, self.c):
                for p in group:
                    nn.init.xavier_normal_(p)
            self.gates = nn.ModuleList(nn.Linear(d, k, bias=False) for _ in range(num_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        """``(B, d) -> (B, d)``."""
        x = x0
        for layer in range(self.num_layers):
            if self.low_rank is None:
                x = x0 * (self.weights[layer](x) + self.bias[layer]) + x  # (B, d)
            else:
                h = torch.tanh(torch.einsum("bd,kdr->bkr", x, self.v[layer]))  # (B, K, r)
                h = torch.tanh(torch.einsum("bkr,ksr->bks", h, self.c[layer]))  # (B, K, r)
                experts = torch.einsum("bks,kds->bkd", h, self.u[layer])  # (B, K, d)
                experts = x0.unsqueeze(1) * (experts + self.bias[layer])  # (B, K, d)
                gate = torch.softmax(self.gates[layer](x), dim=-1).unsqueeze(-1)  # (B, K, 1)
                x = (gate * experts).sum(dim=1) + x  # (B, d)
        return x


def fm_interaction(emb: torch.Tensor) -> torch.Tensor:
    """FM second-order term ``sum_{i<j} <v_i, v_j>`` for field embeddings ``emb`` of shape ``(B, F, D)``.

    Uses Rendle (2010), Lemma 3.1: ``sum_{i<j} <v_i, v_j> = 1/2 sum_d [(sum_i v_id)^2 - sum_i v_id^2]``.
    Returns ``(B,)``.
    """
    square_of_sum = emb.sum(dim=1).pow(2)  # (B, D)
    sum_of_square = emb.pow(2).sum(dim=1)  # (B, D)
    return 0.5 * (square_of_sum - sum_of_square).sum(dim=1)  # (B,)


Pooling = Literal["sum", "concat"]


def pool_tokens(tokens: torch.Tensor, mode: Pooling) -> torch.Tensor:
    """Pool field tokens ``(B, F, d)`` for the head: ``sum`` -> ``(B, d)``, ``concat`` -> ``(B, F * d)``."""
    if mode == "sum":
        return tokens.sum(dim=1)  # (B, d)
    if mode == "concat":
        return tokens.flatten(1)  # (B, F * d)
    raise ValueError(f"pooling must be 'sum' or 'concat', got {mode!r}")


def pooled_width(mode: Pooling, num_fields: int, dim: int) -> int:
    """Width of :func:`pool_tokens`' output."""
    if mode not in ("sum", "concat"):
        raise ValueError(f"pooling must be 'sum' or 'concat', got {mode!r}")
    return dim if mode == "sum" else num_fields * dim
