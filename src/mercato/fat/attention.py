"""Field-Decomposed Attention (FAT §3.2) with cross-field modulation.

Content alignment uses per-field projections and a learned, asymmetric ``F x F`` matrix ``w`` modulates it::

    q_i = h_i W_Q^(f_i),  k_j = h_j W_K^(f_j),  v_j = h_j W_V^(f_j)
    s_ij = mod(q_i . k_j / sqrt(d_k), w_{f_i f_j})        mod in {x*w, x*(1+w), x+w}   (modulate)
    alpha_ij = softmax_j(s_ij),  o_i = (sum_j alpha_ij v_j) W_O^(f_i)

Parameters per layer: ``O(F d d_k H + H F^2)`` instead of ``O(F^2 d d_k H)`` for field-pair projections.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mercato.ctr.attention import field_softmax, merge_heads, split_heads
from mercato.fat.config import FATConfig, ModulationMode
from mercato.fat.hypernetwork import BasisBank, FieldLinear

__all__ = ["FieldDecomposedAttention", "field_decomposed_attention", "modulate", "neutral_modulation"]


def neutral_modulation(mode: ModulationMode) -> float:
    """The value of ``w`` that leaves the logits unchanged: 1 for ``mul``, 0 for ``one_plus`` and ``add``."""
    return 1.0 if mode == "mul" else 0.0


def modulate(scores: torch.Tensor, w: torch.Tensor, mode: ModulationMode) -> torch.Tensor:
    """Cross-field modulation of the attention logits (§3.2).

    Args:
        scores: ``(B, H, F, F)`` scaled content logits ``q_i . k_j / sqrt(d_k)``.
        w: ``(H, F, F)`` or ``(1, F, F)``, ``w[h, i, j]`` for query field ``i`` and key field ``j``.
        mode: ``"mul"`` ``s*w`` (impl A), ``"one_plus"`` ``s*(1+w)`` (impl B), ``"add"`` ``s+w`` (additive bias).
    """
    if mode == "mul":
        return scores * w  # (B, H, F, F)
    if mode == "one_plus":
        return scores * (1.0 + w)  # (B, H, F, F)
    if mode == "add":
        return scores + w  # (B, H, F, F)
    raise ValueError(f"unknown modulation mode {mode!r}; valid: mul, one_plus, add")


def field_decomposed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    w: torch.Tensor,
    mode: ModulationMode,
    key_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax_j(mod(q_i . k_j / sqrt(d_k), w_ij)) v_j`` for ``q, k, v`` of shape ``(B, H, F, d_k)``.

    Returns the outputs ``(B, H, F, d_k)`` and the attention weights ``(B, H, F, F)``.
    """
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, F, F)
    scores = modulate(scores, w, mode)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    attn = field_softmax(scores)  # (B, H, F, F)
    return attn @ v, attn


def make_field_linear(
    cfg: FATConfig, num_fields: int, in_dim: int, out_dim: int, per_field: bool, bank: BasisBank | None
) -> FieldLinear:
    """A per-field linear layer: shared if not ``per_field``, else basis-composed (with a bank) or free."""
    owns = bank is None
    if per_field and cfg.hypernetwork and bank is None:
        bank = BasisBank(cfg.num_bases, in_dim, out_dim, cfg.meta_dim)
    shared = not per_field
    return FieldLinear(
        num_fields, in_dim, out_dim, shared=shared, bank=None if shared else bank, owns_bank=owns
    )


class FieldDecomposedAttention(nn.Module):
    """Field-decomposed multi-head attention over ``F`` field tokens (§3.2).

    Args:
        cfg: the FAT config.
        num_fields: F.
        banks: shared basis banks by parameter type (``q``, ``k``, ``v``, ``o``) when bases are shared across
            layers; missing entries are created here.
    """

    def __init__(self, cfg: FATConfig, num_fields: int, banks: dict[str, BasisBank] | None = None) -> None:
        super().__init__()
        banks = banks or {}
        d, a = cfg.embed_dim, cfg.attn_dim or cfg.embed_dim
        self.cfg = cfg
        self.num_heads = cfg.num_heads
        self.q = make_field_linear(cfg, num_fields, d, a, cfg.per_field_qkv, banks.get("q"))
        self.k = make_field_linear(cfg, num_fields, d, a, cfg.per_field_qkv, banks.get("k"))
        self.v = make_field_linear(cfg, num_fields, d, a, cfg.per_field_qkv, banks.get("v"))
        self.o = make_field_linear(cfg, num_fields, a, d, cfg.field_aware_output, banks.get("o"))
        heads = cfg.num_heads if cfg.modulation_per_head else 1
        init = torch.full((heads, num_fields, num_fields), cfg.modulation_init_mean)
        if cfg.modulation_init_std > 0:
            init = init + cfg.modulation_init_std * torch.randn_like(init)
        self.modulation = nn.Parameter(init)  # (H or 1, F, F), w[h, query field, key field]
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        field_ids: torch.Tensor,
        meta: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        noise: bool = False,
    ) -> torch.Tensor:
        """``(B, F, d) -> (B, F, d)``; token ``i`` belongs to field ``field_ids[i]``."""
        h, top_k = self.num_heads, self.cfg.top_k
        q, k, v = (split_heads(p(x, field_ids, meta, top_k, noise), h) for p in (self.q, self.k, self.v))
        w = self.modulation[:, field_ids][:, :, field_ids]  # (H or 1, F, F)
        out, attn = field_decomposed_attention(q, k, v, w, self.cfg.modulation, key_mask)  # (B, H, F, d_k)
        if self.dropout.p > 0:
            out = self.dropout(attn) @ v  # (B, H, F, d_k)
        return self.o(merge_heads(out), field_ids, meta, top_k, noise)  # (B, F, d)
