"""CTR baselines on the shared :class:`~mercato.ctr.embedding.FieldEmbedding`: LR, FM, DeepFM and DCNv2.

Each model is ``Model(schema, config)`` with its own config dataclass; defaults follow the papers and
FuxiCTR's ``*_default`` experiment settings (embedding width 16 as in BARS Criteo_x4, towers 400-400-400).

* LR: ``sum_f w_f + b``, one learned weight per feature value.
* FM (Rendle, 2010): LR plus the pairwise term :func:`~mercato.ctr.blocks.fm_interaction`.
* DeepFM (Guo et al., 2017): FM plus an MLP on the same field embeddings, summed as logits.
* DCNv2 (Wang et al., 2021): cross network :class:`~mercato.ctr.blocks.CrossNetV2` and an MLP, stacked
  (cross -> MLP) or parallel (concatenated), then a linear head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from mercato.ctr.base import CTRModel
from mercato.ctr.blocks import MLP, CrossNetV2, Norm, fm_interaction
from mercato.ctr.checks import at_least, dropout_rate, positive_widths
from mercato.ctr.embedding import FieldEmbedding
from mercato.ctr.schema import FeatureSchema

__all__ = ["DCNv2", "DCNv2Config", "DeepFM", "DeepFMConfig", "FM", "FMConfig", "LR", "LRConfig"]


@dataclass
class LRConfig:
    """Logistic regression."""

    init_std: float = 1e-4  # std of the normal init of the per-value weights w

    def __post_init__(self) -> None:
        at_least(self, 0, "init_std")


@dataclass
class FMConfig:
    """Factorization machine."""

    embed_dim: int = 16  # k in Rendle (2010), the factor width
    init_std: float = 1e-4  # std of the normal init of weights and factors

    def __post_init__(self) -> None:
        at_least(self, 1, "embed_dim")
        at_least(self, 0, "init_std")


@dataclass
class DeepFMConfig:
    """DeepFM (Guo et al., 2017)."""

    embed_dim: int = 16  # k, the shared embedding width (BARS Criteo_x4: 16)
    hidden_units: tuple[int, ...] = (400, 400, 400)  # DNN tower widths (FuxiCTR DeepFM_default)
    dropout: float = 0.0  # dropout after each hidden layer (FuxiCTR net_dropout)
    activation: str = "relu"  # hidden activation
    norm: Norm = "none"  # none | batch | layer normalisation in the DNN
    init_std: float = 1e-4  # std of the normal init of embeddings

    def __post_init__(self) -> None:
        at_least(self, 1, "embed_dim")
        at_least(self, 0, "init_std")
        positive_widths(self, "hidden_units")
        dropout_rate(self, "dropout")


@dataclass
class DCNv2Config:
    """DCN-V2 (Wang et al., 2021)."""

    embed_dim: int = 16  # embedding width per field; x_0 has F * embed_dim entries
    num_cross_layers: int = 3  # L_c, cross layers (FuxiCTR DCNv2_default)
    structure: Literal["parallel", "stacked"] = "parallel"  # Fig. 2: stacked (cross -> DNN) or parallel
    hidden_units: tuple[int, ...] = (400, 400, 400)  # DNN widths (FuxiCTR parallel_dnn_hidden_units)
    dropout: float = 0.0  # dropout after each hidden layer
    activation: str = "relu"  # hidden activation
    norm: Norm = "none"  # none | batch | layer normalisation in the DNN
    low_rank: int | None = None  # r of the low-rank mixture (DCN-Mix, Eq. 3); None: full-rank W
    num_experts: int = 4  # K experts per cross layer when low_rank is set
    init_std: float = 1e-4  # std of the normal init of embeddings

    def __post_init__(self) -> None:
        at_least(self, 1, "embed_dim", "num_experts", "low_rank")
        at_least(self, 0, "num_cross_layers", "init_std")
        positive_widths(self, "hidden_units")
        dropout_rate(self, "dropout")


class LR(CTRModel):
    """Logistic regression: ``logit = b + sum_f w[x_f]``."""

    def __init__(self, schema: FeatureSchema, config: LRConfig | None = None) -> None:
        super().__init__()
        self.config = config or LRConfig()
        self.weights = FieldEmbedding(schema, 1, init_std=self.config.init_std)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)``."""
        return self.weights(batch).sum(dim=(1, 2)) + self.bias  # (B, F, 1) -> (B,)


class FM(CTRModel):
    """Factorization machine: LR plus ``sum_{i<j} <v_i, v_j>``."""

    def __init__(self, schema: FeatureSchema, config: FMConfig | None = None) -> None:
        super().__init__()
        self.config = config or FMConfig()
        self.linear = LR(schema, LRConfig(init_std=self.config.init_std))
        self.embedding = FieldEmbedding(schema, self.config.embed_dim, init_std=self.config.init_std)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)``."""
        return self.linear(batch) + fm_interaction(self.embedding(batch))  # (B,)


class DeepFM(CTRModel):
    """DeepFM: FM and an MLP share the field embeddings; their logits are summed."""

    def __init__(self, schema: FeatureSchema, config: DeepFMConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or DeepFMConfig()
        self.linear = LR(schema, LRConfig(init_std=cfg.init_std))
        self.embedding = FieldEmbedding(schema, cfg.embed_dim, init_std=cfg.init_std)
        self.dnn = MLP(
            schema.num_fields * cfg.embed_dim,
            cfg.hidden_units,
            output_dim=1,
            dropout=cfg.dropout,
            activation_name=cfg.activation,
            norm=cfg.norm,
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)``."""
        emb = self.embedding(batch)  # (B, F, D)
        deep = self.dnn(emb.flatten(1)).squeeze(-1)  # (B, F*D) -> (B,)
        return self.linear(batch) + fm_interaction(emb) + deep  # (B,)


class DCNv2(CTRModel):
    """DCN-V2: cross network plus DNN, stacked or parallel, then a linear head."""

    def __init__(self, schema: FeatureSchema, config: DCNv2Config | None = None) -> None:
        super().__init__()
        cfg = self.config = config or DCNv2Config()
        if cfg.structure not in ("parallel", "stacked"):
            raise ValueError(f"DCNv2 structure must be 'parallel' or 'stacked', got {cfg.structure!r}")
        d = schema.num_fields * cfg.embed_dim
        self.embedding = FieldEmbedding(schema, cfg.embed_dim, init_std=cfg.init_std)
        self.cross = CrossNetV2(d, cfg.num_cross_layers, low_rank=cfg.low_rank, num_experts=cfg.num_experts)
        self.dnn = MLP(
            d, cfg.hidden_units, dropout=cfg.dropout, activation_name=cfg.activation, norm=cfg.norm
        )
        head_in = self.dnn.output_dim if cfg.structure == "stacked" else d + self.dnn.output_dim
        self.head = nn.Linear(head_in, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)``."""
        x0 = self.embedding(batch).flatten(1)  # (B, F, D) -> (B, F*D)
        if self.config.structure == "stacked":
            h = self.dnn(self.cross(x0))  # (B, H)
        else:
            h = torch.cat([self.cross(x0), self.dnn(x0)], dim=1)  # (B, F*D + H)
        return self.head(h).squeeze(-1)  # (B,)
