"""Plain multi-head self-attention over field tokens, shared by the AutoInt and Transformer baselines.

This is the *unstructured* attention that FAT (:mod:`mercato.fat`) decomposes: one ``W_Q, W_K, W_V`` for
every token, no field-pair modulation. It is also the oracle of FAT's tests: with per-field weights tied and
the modulation neutral, FAT's attention must equal :class:`MultiHeadSelfAttention`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "MultiHeadSelfAttention",
    "field_softmax",
    "merge_heads",
    "scaled_dot_product_attention",
    "split_heads",
]


_WRITTEN_OUT_BELOW = 16  # rows shorter than this use the written-out softmax (ATen vectorises from 16 on)


def field_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last (field) axis; equals ``torch.softmax(scores, -1)`` (``-inf`` entries get weight 0).

    For rows shorter than 16 (e.g. 10 fields) it is written out as ``exp(s - max) / sum``, which is faster
    forward + backward on CPU than ATen's kernel, not vectorised for such rows; from 16 on ATen's kernel is
    faster and is used. See ``benchmarks/field_softmax.py``. A row that is all ``-inf`` gives NaN, as
    ``torch.softmax`` does.
    """
    if scores.shape[-1] >= _WRITTEN_OUT_BELOW:
        return torch.softmax(scores, dim=-1)
    e = (scores - scores.amax(dim=-1, keepdim=True).detach()).exp()
    return e / e.sum(dim=-1, keepdim=True)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, F, H*d_k) -> (B, H, F, d_k)``."""
    b, f, e = x.shape
    return x.view(b, f, num_heads, e // num_heads).transpose(1, 2)  # (B, H, F, d_k)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, F, d_k) -> (B, F, H*d_k)``."""
    b, h, f, dk = x.shape
    return x.transpose(1, 2).reshape(b, f, h * dk)  # (B, F, H*d_k)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    scale: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax_j(q_i . k_j / sqrt(d_k)) v_j`` (Vaswani et al., 2017, Eq. 1).

    Args:
        q, k, v: ``(B, H, F, d_k)``.
        key_mask: ``(B, F)`` bool, True where a key may be attended (None: all).
        scale: divide the logits by ``sqrt(d_k)`` (AutoInt does not).

    Returns:
        the outputs ``(B, H, F, d_k)`` and the attention weights ``(B, H, F, F)``.
    """
    scores = q @ k.transpose(-1, -2)  # (B, H, F, F)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    attn = field_softmax(scores)  # (B, H, F, F)
    return attn @ v, attn  # (B, H, F, d_k), (B, H, F, F)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with shared ``W_Q, W_K, W_V`` (and optional ``W_O``) for all tokens.

    Args:
        dim: d, the token width.
        num_heads: H.
        attn_dim: H * d_k, the width of queries/keys/values (default ``dim``).
        out_proj: apply ``W_O`` after merging heads (Transformer); AutoInt concatenates heads without it.
        bias: biases on the projections.
        dropout: dropout on the attention weights.
        scale: divide the logits by ``sqrt(d_k)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_dim: int | None = None,
        out_proj: bool = True,
        bias: bool = True,
        dropout: float = 0.0,
        scale: bool = True,
    ) -> None:
        super().__init__()
        attn_dim = attn_dim or dim
        if attn_dim % num_heads:
            raise ValueError(f"attn_dim {attn_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = scale
        self.q = nn.Linear(dim, attn_dim, bias=bias)
        self.k = nn.Linear(dim, attn_dim, bias=bias)
        self.v = nn.Linear(dim, attn_dim, bias=bias)
        self.o: nn.Module = nn.Linear(attn_dim, dim, bias=bias) if out_proj else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim if out_proj else attn_dim

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, F, d) -> (B, F, d)`` (or ``(B, F, attn_dim)`` without ``W_O``)."""
        h = self.num_heads
        q, k, v = (split_heads(proj(x), h) for proj in (self.q, self.k, self.v))  # (B, H, F, d_k) each
        scores = q @ k.transpose(-1, -2)  # (B, H, F, F)
        if self.scale:
            scores = scores / math.sqrt(q.shape[-1])
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        attn = self.dropout(field_softmax(scores))  # (B, H, F, F)
        return self.o(merge_heads(attn @ v))  # (B, F, d)
