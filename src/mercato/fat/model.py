"""FieldAwareTransformer: field-aware tokens -> L FAT blocks -> sum-pool -> MLP -> logit.

* Field-aware tokenization (§3.1): ``h_i = e_i + b_{f_i}``, one token per field.
* FAT block (pre-LN default): ``z + FDA(LN(z))`` then ``z + FFN_f(LN(z))`` with Field-Decomposed Attention
  (:mod:`mercato.fat.attention`) and the field-aware FFN ``W_2^(f) sigma(W_1^(f) x)`` (§3.3).
* Per-field weights come from the Basis-Composed Hypernetwork (§3.4, :mod:`mercato.fat.hypernetwork`) unless
  ``hypernetwork=False``; :meth:`FieldAwareTransformer.export` precomputes them for serving.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import nn

from mercato.ctr.base import CTRModel
from mercato.ctr.blocks import MLP, activation, pool_tokens, pooled_width
from mercato.ctr.embedding import FieldEmbedding
from mercato.ctr.schema import FeatureSchema
from mercato.ctr.transformer import field_key_mask
from mercato.fat.attention import FieldDecomposedAttention, make_field_linear, neutral_modulation
from mercato.fat.config import FATConfig
from mercato.fat.hypernetwork import BasisBank, FieldLinear

__all__ = ["FATBlock", "FieldAwareFFN", "FieldAwareTransformer", "fat_parameter_count"]

_TYPES = ("q", "k", "v", "o", "ffn1", "ffn2")


class FieldAwareFFN(nn.Module):
    """``FFN_i(x) = W_2^(f_i) sigma(W_1^(f_i) x)`` (§3.3); one shared FFN when ``field_aware_ffn=False``."""

    def __init__(self, cfg: FATConfig, num_fields: int, banks: dict[str, BasisBank] | None = None) -> None:
        super().__init__()
        banks = banks or {}
        d, hidden = cfg.embed_dim, cfg.hidden_width
        self.top_k = cfg.top_k
        self.w1 = make_field_linear(cfg, num_fields, d, hidden, cfg.field_aware_ffn, banks.get("ffn1"))
        self.w2 = make_field_linear(cfg, num_fields, hidden, d, cfg.field_aware_ffn, banks.get("ffn2"))
        self.act = activation(cfg.ffn_activation)

    def forward(
        self, x: torch.Tensor, field_ids: torch.Tensor, meta: torch.Tensor | None = None, noise: bool = False
    ) -> torch.Tensor:
        """``(B, F, d) -> (B, F, d)``."""
        hidden = self.act(self.w1(x, field_ids, meta, self.top_k, noise))  # (B, F, d_ff)
        return self.w2(hidden, field_ids, meta, self.top_k, noise)  # (B, F, d)


class FATBlock(nn.Module):
    """One FAT layer: field-decomposed attention and field-aware FFN with residuals and LayerNorm."""

    def __init__(self, cfg: FATConfig, num_fields: int, banks: dict[str, BasisBank] | None = None) -> None:
        super().__init__()
        self.pre_norm = cfg.norm == "pre"
        self.attn = FieldDecomposedAttention(cfg, num_fields, banks)
        self.ffn = FieldAwareFFN(cfg, num_fields, banks)
        self.norm1 = nn.LayerNorm(cfg.embed_dim)
        self.norm2 = nn.LayerNorm(cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        z: torch.Tensor,
        field_ids: torch.Tensor,
        meta: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        noise: bool = False,
    ) -> torch.Tensor:
        """``(B, F, d) -> (B, F, d)``."""
        if self.pre_norm:
            z = z + self.drop(self.attn(self.norm1(z), field_ids, meta, key_mask, noise))  # (B, F, d)
            return z + self.drop(self.ffn(self.norm2(z), field_ids, meta, noise))  # (B, F, d)
        z = self.norm1(z + self.drop(self.attn(z, field_ids, meta, key_mask, noise)))
        return self.norm2(z + self.drop(self.ffn(z, field_ids, meta, noise)))


class FieldAwareTransformer(CTRModel):
    """The Field-Aware Transformer CTR model (``forward(batch) -> logits (B,)``).

    Args:
        schema: the fitted feature schema (F = its number of fields).
        config: :class:`FATConfig` (defaults if None).

    Example:
        >>> model = FieldAwareTransformer(schema, FATConfig(embed_dim=16))  # doctest: +SKIP
        >>> serving = model.export()  # per-field weights precomputed, hypernetwork gone  # doctest: +SKIP
    """

    def __init__(self, schema: FeatureSchema, config: FATConfig | None = None) -> None:
        super().__init__()
        cfg = config or FATConfig()
        self.config = cfg
        d = cfg.embed_dim
        self.embedding = FieldEmbedding(schema, d, init_std=cfg.embed_init_std)
        f = self.num_fields = self.embedding.num_fields
        self.field_names = schema.field_names
        self.register_buffer("field_ids", torch.arange(f), persistent=False)
        self.field_bias = nn.Parameter(torch.zeros(f, d)) if cfg.field_bias else None  # b_f (§3.1)
        self.meta: nn.Parameter | None = None
        self.shared_banks = nn.ModuleDict()
        if cfg.hypernetwork:
            self.meta = nn.Parameter(torch.randn(f, cfg.meta_dim))  # phi_f (§3.4)
            if cfg.share_bases_across_layers:
                self.shared_banks.update(_make_banks(cfg))
        banks = dict(self.shared_banks.items())  # type: ignore[arg-type]
        self.blocks = nn.ModuleList(FATBlock(cfg, f, banks) for _ in range(cfg.num_layers))  # type: ignore[arg-type]
        self.final_norm: nn.Module = nn.LayerNorm(d) if cfg.norm == "pre" else nn.Identity()
        self.head = MLP(pooled_width(cfg.pooling, f, d), cfg.head_units, output_dim=1, dropout=cfg.dropout)
        self.exported = False

    # -- forward ---------------------------------------------------------------------------------------------
    def encode_tokens(
        self,
        tokens: torch.Tensor,
        field_ids: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the FAT blocks on embedded tokens ``(B, F, d)`` of fields ``field_ids`` (default 0..F-1).

        Adds the field bias, so permuting ``tokens`` and ``field_ids`` together permutes the outputs.
        """
        ids: torch.Tensor = self.field_ids if field_ids is None else field_ids  # type: ignore[assignment]
        z = tokens if self.field_bias is None else tokens + self.field_bias[ids]  # (B, F, d)
        noise = self.training and self.config.router_noise == "gumbel"
        for block in self.blocks:
            z = block(z, ids, self.meta, key_mask, noise)  # (B, F, d)
        return self.final_norm(z)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token outputs ``(B, F, d)`` for a batch dict."""
        mask = field_key_mask(batch) if self.config.mask_empty_fields else None
        return self.encode_tokens(self.embedding(batch), key_mask=mask)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)``: pool the field tokens (sum, or concatenate), then the MLP head."""
        pooled = pool_tokens(self.encode(batch), self.config.pooling)  # (B, d) or (B, F * d)
        return self.head(pooled).squeeze(-1)  # (B,)

    # -- hypernetwork ------------------------------------------------------------------------------------------
    def field_linears(self) -> Iterator[FieldLinear]:
        """Every per-field linear layer of the model."""
        return (m for m in self.modules() if isinstance(m, FieldLinear))

    def auxiliary_loss(self) -> torch.Tensor:
        """``lambda * mean`` load-balance loss over the basis compositions of the last forward pass."""
        zero = torch.zeros((), device=self.embedding.table.weight.device)
        if self.config.load_balance_weight <= 0 or self.exported:
            return zero
        losses = [loss for lin in self.field_linears() if (loss := lin.aux_loss()) is not None]
        if not losses:
            return zero
        return self.config.load_balance_weight * torch.stack(losses).mean()

    @torch.no_grad()
    def export(self) -> FieldAwareTransformer:
        """A copy for serving: the per-field weights are composed once and stored; the hypernetwork is dropped.

        The copy is in eval mode and computes the same outputs as ``self.eval()`` without touching bases,
        routers or meta-embeddings.
        """
        for lin in self.field_linears():  # drop graph-attached routing state (not deep-copyable)
            lin.last_logits = lin.last_routing = None
        served = copy.deepcopy(self).eval()
        if served.meta is not None:
            meta = served.meta.detach()
            for lin in list(served.field_linears()):
                lin.freeze(meta, served.config.top_k)
            del served.meta
            served.meta = None
        served.shared_banks = nn.ModuleDict()
        served.exported = True
        return served

    # -- interpretability ------------------------------------------------------------------------------------
    @torch.no_grad()
    def modulation_matrix(self, layer: int | None = None) -> torch.Tensor:
        """The learned cross-field modulation ``(F, F)`` (row: query field, column: key field).

        Returned as the deviation from neutral (``w - 1`` for ``mul``, ``w`` otherwise), averaged over heads
        and, when ``layer`` is None, over layers.
        """
        layers = list(self.blocks) if layer is None else [self.blocks[layer]]
        mods = [blk.attn.modulation for blk in layers if isinstance(blk, FATBlock)]
        ws = torch.stack([m.mean(dim=0) for m in mods])  # (L, F, F)
        return (ws.mean(dim=0) - neutral_modulation(self.config.modulation)).cpu()  # (F, F)


def _make_banks(cfg: FATConfig) -> dict[str, BasisBank]:
    """One bank per parameter type that is per-field (shared across layers)."""
    d, a, hidden = cfg.embed_dim, cfg.attn_dim or cfg.embed_dim, cfg.hidden_width
    shapes = {"q": (d, a), "k": (d, a), "v": (d, a), "o": (a, d), "ffn1": (d, hidden), "ffn2": (hidden, d)}
    enabled = {
        "q": cfg.per_field_qkv,
        "k": cfg.per_field_qkv,
        "v": cfg.per_field_qkv,
        "o": cfg.field_aware_output,
        "ffn1": cfg.field_aware_ffn,
        "ffn2": cfg.field_aware_ffn,
    }
    return {t: BasisBank(cfg.num_bases, *shapes[t], cfg.meta_dim) for t in _TYPES if enabled[t]}


def fat_parameter_count(cfg: FATConfig, num_fields: int) -> int:
    """Trainable parameters of FAT's body (field bias, meta-embeddings, blocks, final norm; no embedding/head).

    Per layer, with ``A = H d_k`` and ``H_w`` = H (per-head modulation) or 1::

        free per-field weights:  F (3 d A + A d + 2 d d_ff) + biases + H_w F^2 + 4d   = O(F d d_k H + F^2)
        basis-composed weights:  M (3 d A + A d + 2 d d_ff) + 6 M k + biases + H_w F^2 + 4d, plus F k once
                                 = O(M d^2 + F k)

    where biases = F (3A + d + d_ff + d) for per-field layers (shared layers count once, not F times).
    """
    f, d, a, hidden = num_fields, cfg.embed_dim, cfg.attn_dim or cfg.embed_dim, cfg.hidden_width
    layers = cfg.num_layers
    linears = [
        (d, a, cfg.per_field_qkv),
        (d, a, cfg.per_field_qkv),
        (d, a, cfg.per_field_qkv),
        (a, d, cfg.field_aware_output),
        (d, hidden, cfg.field_aware_ffn),
        (hidden, d, cfg.field_aware_ffn),
    ]
    per_layer = 0
    bank_params = 0
    for din, dout, per_field in linears:
        n = f if per_field else 1
        per_layer += n * dout  # biases
        if per_field and cfg.hypernetwork:
            bank_params += cfg.num_bases * din * dout + cfg.meta_dim * cfg.num_bases  # bases + router
        else:
            per_layer += n * din * dout
    per_layer += (cfg.num_heads if cfg.modulation_per_head else 1) * f * f  # w
    per_layer += 4 * d  # two LayerNorms
    total = layers * per_layer
    total += bank_params if cfg.share_bases_across_layers else layers * bank_params
    total += f * d if cfg.field_bias else 0
    total += f * cfg.meta_dim if cfg.hypernetwork else 0
    total += 2 * d if cfg.norm == "pre" else 0
    return total
