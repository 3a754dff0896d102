"""AutoInt (Song et al., CIKM 2019, "AutoInt: Automatic Feature Interaction Learning via Self-Attentive
Neural Networks").

Each interacting layer (Eq. 5-8 of the paper) is multi-head self-attention over the field embeddings with
heads concatenated (no output projection), a residual projection ``W_Res`` and a ReLU::

    e~_m = concat_h sum_k softmax_k(<W_Q^h e_m, W_K^h e_k>) W_V^h e_k
    e_m^Res = ReLU(e~_m + W_Res e_m)

The output layer (Eq. 9) is a logistic regression on the concatenated field outputs. ``dnn_units`` adds the
parallel DNN tower of AutoInt+ (the paper's Sec. 5.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mercato.ctr.attention import MultiHeadSelfAttention
from mercato.ctr.base import CTRModel
from mercato.ctr.blocks import MLP
from mercato.ctr.checks import at_least, dropout_rate, positive_widths
from mercato.ctr.embedding import FieldEmbedding
from mercato.ctr.schema import FeatureSchema

__all__ = ["AutoInt", "AutoIntConfig", "InteractingLayer"]


@dataclass
class AutoIntConfig:
    """AutoInt / AutoInt+ hyperparameters (defaults as in the paper / FuxiCTR's AutoInt_default)."""

    embed_dim: int = 16  # d, field embedding width (Sec. 5.1.3)
    num_layers: int = 3  # number of interacting layers (Sec. 5.1.3)
    num_heads: int = 2  # H, attention heads per layer (Sec. 5.1.3)
    attn_dim: int = 64  # H * d', concatenated head width (d' = 32 in Sec. 5.1.3)
    use_residual: bool = True  # W_Res residual connection (Eq. 8)
    use_scale: bool = False  # divide logits by sqrt(d'); the paper does not
    layer_norm: bool = False  # LayerNorm after each interacting layer (not in the paper)
    dnn_units: tuple[int, ...] = ()  # AutoInt+ parallel DNN tower widths (empty: plain AutoInt)
    dropout: float = 0.0  # dropout on attention weights and the DNN
    embed_init_std: float = 1e-2  # std of the embedding initialisation

    def __post_init__(self) -> None:
        at_least(self, 1, "embed_dim", "num_layers", "num_heads", "attn_dim")
        at_least(self, 0, "embed_init_std")
        positive_widths(self, "dnn_units")
        dropout_rate(self, "dropout")
        if self.attn_dim % self.num_heads:
            raise ValueError(f"attn_dim {self.attn_dim} must be divisible by num_heads {self.num_heads}")


class InteractingLayer(nn.Module):
    """One AutoInt interacting layer ``(B, F, d_in) -> (B, F, attn_dim)`` (Eq. 5-8)."""

    def __init__(
        self,
        in_dim: int,
        attn_dim: int,
        num_heads: int,
        use_residual: bool = True,
        use_scale: bool = False,
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.attn = MultiHeadSelfAttention(
            in_dim, num_heads, attn_dim, out_proj=False, bias=False, dropout=dropout, scale=use_scale
        )
        self.residual = nn.Linear(in_dim, attn_dim, bias=False) if use_residual else None
        self.norm: nn.Module = nn.LayerNorm(attn_dim) if layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, d_in) -> (B, F, attn_dim)``."""
        out = self.attn(x)  # (B, F, attn_dim)
        if self.residual is not None:
            out = out + self.residual(x)
        return self.norm(torch.relu(out))


class AutoInt(CTRModel):
    """Embeddings -> interacting layers -> flatten -> logistic output (+ AutoInt+ DNN tower)."""

    def __init__(self, schema: FeatureSchema, config: AutoIntConfig | None = None) -> None:
        super().__init__()
        cfg = config or AutoIntConfig()
        self.config = cfg
        self.embedding = FieldEmbedding(schema, cfg.embed_dim, init_std=cfg.embed_init_std)
        f = self.embedding.num_fields
        dims = [cfg.embed_dim] + [cfg.attn_dim] * cfg.num_layers
        self.layers = nn.Sequential(
            *(
                InteractingLayer(
                    dims[i],
                    cfg.attn_dim,
                    cfg.num_heads,
                    cfg.use_residual,
                    cfg.use_scale,
                    cfg.layer_norm,
                    cfg.dropout,
                )
                for i in range(cfg.num_layers)
            )
        )
        self.output = nn.Linear(f * dims[-1], 1)
        self.dnn = (
            MLP(f * cfg.embed_dim, cfg.dnn_units, output_dim=1, dropout=cfg.dropout)
            if cfg.dnn_units
            else None
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)``."""
        emb = self.embedding(batch)  # (B, F, d)
        z = self.layers(emb)  # (B, F, attn_dim)
        logit = self.output(z.flatten(1)).squeeze(-1)  # (B,)
        if self.dnn is not None:
            logit = logit + self.dnn(emb.flatten(1)).squeeze(-1)
        return logit
