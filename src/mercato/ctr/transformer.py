"""A vanilla Transformer over field tokens: FAT's baseline at the same width.

One token per field (``FieldEmbedding``) plus a learned per-field position embedding, ``L`` standard
Transformer blocks (shared ``W_Q, W_K, W_V, W_O`` and FFN for every token), sum-pooling over the tokens and
an MLP head -- the same tokenization, pooling and head as :class:`mercato.fat.FieldAwareTransformer`, so that
the only differences are FAT's per-field parameters and cross-field modulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from mercato.ctr.attention import MultiHeadSelfAttention
from mercato.ctr.base import CTRModel
from mercato.ctr.blocks import MLP, activation, pool_tokens, pooled_width
from mercato.ctr.checks import at_least, dropout_rate, positive_widths
from mercato.ctr.embedding import FieldEmbedding
from mercato.ctr.schema import FeatureSchema

__all__ = ["TransformerBlock", "TransformerCTR", "TransformerCTRConfig", "field_key_mask"]


@dataclass
class TransformerCTRConfig:
    """Vanilla Transformer CTR model (the width-matched baseline of FAT)."""

    embed_dim: int = 64  # d, token width (same as FAT's d)
    num_layers: int = 2  # L, Transformer blocks
    num_heads: int = 4  # H, attention heads
    attn_dim: int | None = None  # H * d_k, query/key/value width (None: d)
    ffn_dim: int | None = None  # d_ff, hidden width of the FFN (None: 4d)
    ffn_activation: str = "silu"  # FFN nonlinearity
    norm: Literal["pre", "post"] = "pre"  # LayerNorm placement
    position_embedding: bool = True  # learned per-field embedding added to each token
    dropout: float = 0.0  # dropout on attention weights and FFN/residual outputs
    pooling: Literal["sum", "concat"] = "sum"  # tokens -> head: sum-pool (as FAT) or concatenate
    head_units: tuple[int, ...] = (128, 64)  # hidden widths of the MLP head on the pooled tokens
    mask_empty_fields: bool = True  # multi-hot fields with no token are masked as keys
    embed_init_std: float = 1e-2  # std of the embedding initialisation

    def __post_init__(self) -> None:
        at_least(self, 1, "embed_dim", "num_layers", "num_heads", "attn_dim", "ffn_dim")
        at_least(self, 0, "embed_init_std")
        positive_widths(self, "head_units")
        dropout_rate(self, "dropout")
        attn = self.attn_dim or self.embed_dim
        if attn % self.num_heads:
            raise ValueError(f"attn_dim {attn} must be divisible by num_heads {self.num_heads}")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {self.norm!r}")
        if self.pooling not in ("sum", "concat"):
            raise ValueError(f"pooling must be 'sum' or 'concat', got {self.pooling!r}")


def field_key_mask(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, F)`` bool: True for every sparse field and for multi-hot fields holding at least one token."""
    sparse = batch["sparse"]  # (B, F_s)
    keep = [torch.ones_like(sparse, dtype=torch.bool)]
    multihot = batch.get("multihot")
    if multihot is not None and multihot.shape[1] > 0:
        keep.append((multihot > 0).any(dim=-1))  # (B, F_m)
    mask = torch.cat(keep, dim=1)  # (B, F)
    # a row with no valid key (no sparse field, every multi-hot empty) attends to everything instead of NaN
    return mask | ~mask.any(dim=1, keepdim=True)


class TransformerBlock(nn.Module):
    """``z + Attn(LN(z))`` then ``z + FFN(LN(z))`` (pre-LN), or the post-LN variant."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_dim: int | None = None,
        ffn_dim: int | None = None,
        ffn_activation: str = "silu",
        norm: str = "pre",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pre_norm = norm == "pre"
        self.attn = MultiHeadSelfAttention(dim, num_heads, attn_dim, out_proj=True, dropout=dropout)
        hidden = ffn_dim or 4 * dim
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), activation(ffn_activation), nn.Linear(hidden, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, F, d) -> (B, F, d)``."""
        if self.pre_norm:
            z = z + self.drop(self.attn(self.norm1(z), key_mask))  # (B, F, d)
            return z + self.drop(self.ffn(self.norm2(z)))  # (B, F, d)
        z = self.norm1(z + self.drop(self.attn(z, key_mask)))
        return self.norm2(z + self.drop(self.ffn(z)))


class TransformerCTR(CTRModel):
    """Field tokens -> L Transformer blocks -> sum-pool (or concatenate) -> MLP -> logit."""

    def __init__(self, schema: FeatureSchema, config: TransformerCTRConfig | None = None) -> None:
        super().__init__()
        cfg = config or TransformerCTRConfig()
        self.config = cfg
        d = cfg.embed_dim
        self.embedding = FieldEmbedding(schema, d, init_std=cfg.embed_init_std)
        self.num_fields = self.embedding.num_fields
        self.position = nn.Parameter(torch.zeros(self.num_fields, d)) if cfg.position_embedding else None
        self.blocks = nn.ModuleList(
            TransformerBlock(
                d, cfg.num_heads, cfg.attn_dim, cfg.ffn_dim, cfg.ffn_activation, cfg.norm, cfg.dropout
            )
            for _ in range(cfg.num_layers)
        )
        self.final_norm: nn.Module = nn.LayerNorm(d) if cfg.norm == "pre" else nn.Identity()
        self.head = MLP(
            pooled_width(cfg.pooling, self.num_fields, d), cfg.head_units, output_dim=1, dropout=cfg.dropout
        )

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token outputs ``(B, F, d)`` after the last block."""
        z = self.embedding(batch)  # (B, F, d)
        if self.position is not None:
            z = z + self.position  # (B, F, d)
        mask = field_key_mask(batch) if self.config.mask_empty_fields else None
        for block in self.blocks:
            z = block(z, mask)
        return self.final_norm(z)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)``."""
        pooled = pool_tokens(self.encode(batch), self.config.pooling)  # (B, d) or (B, F * d)
        return self.head(pooled).squeeze(-1)  # (B,)
