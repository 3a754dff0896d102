"""AIF's real-time approximations of interaction-dependent parts, each with its exact twin (digest §1.4).

The paper names Bridge Embedding Approximation (BEA) and LSH long-sequence modelling; its equations could not be
read, so these are the digest's [U] reconstructions, written as small pure functions:

* :func:`target_attention` (exact): ``TA(i) = sum_t softmax_t(e_i . s_t / sqrt(d)) s_t``, cost O(N L d) online.
* BEA: ``TA(i) ~= sum_b p(b|i) V_b`` with ``V_b = sum_t softmax_t(beta_b . s_t / sqrt(d)) s_t`` (user side,
  :func:`bea_user_summaries`, once per request) and ``p(b|i) = softmax_b(e_i . beta_b / tau)`` (item side,
  :func:`bea_item_weights`, nearline); online :func:`bea_combine` costs O(N B d).
* SimHash LSH (SDIM-style): ``m = H * tau`` random hyperplanes; behaviour ``t`` and candidate ``i`` collide in
  group ``h`` when their ``tau`` sign bits agree. :func:`lsh_user_buckets` sums the behaviours per bucket of each
  group (user side), :func:`simhash_codes` gives the candidate's bucket per group (item side) and
  :func:`lsh_combine` pools by lookup, O(N H d) online. :func:`lsh_pool_bruteforce` is the pairwise oracle of the
  same estimator, and :func:`lsh_expected_pool` its exact limit for ``H -> infinity``: weights
  ``(1 - angle(e_i, s_t) / pi) ** tau`` (the SimHash collision probability).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "bea_combine",
    "bea_item_weights",
    "bea_user_summaries",
    "lsh_combine",
    "lsh_expected_pool",
    "lsh_pool_bruteforce",
    "lsh_user_buckets",
    "simhash_codes",
    "target_attention",
]


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    w = torch.softmax(logits, dim=-1)
    return torch.nan_to_num(w, nan=0.0)  # an empty sequence attends to nothing


def target_attention(
    items: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact target attention. items (N, d), seq (L, d), mask (L,) bool -> (N, d)."""
    logits = items @ seq.T / math.sqrt(seq.shape[-1])  # (N, L)
    return _masked_softmax(logits, None if mask is None else mask.unsqueeze(0)) @ seq  # (N, d)


def bea_user_summaries(
    bridges: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """User side of BEA: ``V_b``, target attention with each bridge as the query. bridges (B, d) -> (B, d)."""
    return target_attention(bridges, seq, mask)


def bea_item_weights(items: torch.Tensor, bridges: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Item side of BEA: ``p(b|i) = softmax_b(e_i . beta_b / tau)``. items (N, d), bridges (B, d) -> (N, B)."""
    return torch.softmax(items @ bridges.T / tau, dim=-1)


def bea_combine(weights: torch.Tensor, summaries: torch.Tensor) -> torch.Tensor:
    """Online part of BEA: ``sum_b p(b|i) V_b``. weights (N, B), summaries (B, d) -> (N, d)."""
    return weights @ summaries


def simhash_codes(x: torch.Tensor, planes: torch.Tensor, tau: int) -> torch.Tensor:
    """Bucket of every row in each of the ``H = m / tau`` groups. x (n, d), planes (d, m) -> (n, H) int64."""
    bits = (x @ planes > 0).long()  # (n, m)
    n, m = bits.shape
    if m % tau:
        raise ValueError(f"number of hyperplanes {m} must be a multiple of tau={tau}")
    weights = 2 ** torch.arange(tau, device=x.device)  # (tau,)
    return (bits.view(n, m // tau, tau) * weights).sum(-1)  # (n, H)


def lsh_user_buckets(
    seq: torch.Tensor, planes: torch.Tensor, tau: int, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """User side: per group and bucket, the sum and count of behaviours. seq (L, d) -> (H, 2^tau, d), (H, 2^tau)."""
    codes = simhash_codes(seq, planes, tau)  # (L, H)
    L, H = codes.shape
    keep = torch.ones(L, dtype=seq.dtype, device=seq.device) if mask is None else mask.to(seq.dtype)
    flat = (codes + torch.arange(H, device=seq.device) * 2**tau).reshape(-1)  # (L*H,) bucket of (t, h)
    sums = torch.zeros(H * 2**tau, seq.shape[1], dtype=seq.dtype, device=seq.device)
    sums.index_add_(0, flat, (seq * keep[:, None]).repeat_interleave(H, dim=0))  # rows (t, h), t-major
    counts = torch.zeros(H * 2**tau, dtype=seq.dtype, device=seq.device)
    counts.index_add_(0, flat, keep.repeat_interleave(H))
    return sums.view(H, 2**tau, -1), counts.view(H, 2**tau)


def lsh_combine(item_codes: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Online SDIM pooling: ``sum_h sum_{t in bucket_h(i)} s_t / sum_h |bucket_h(i)|``. item_codes (N, H) -> (N, d)."""
    H = item_codes.shape[1]
    h_idx = torch.arange(H, device=item_codes.device).expand_as(item_codes)  # (N, H)
    num = sums[h_idx, item_codes].sum(1)  # (N, d)
    den = counts[h_idx, item_codes].sum(1, keepdim=True)  # (N, 1)
    return num / den.clamp(min=1.0)


def lsh_pool_bruteforce(
    items: torch.Tensor, seq: torch.Tensor, planes: torch.Tensor, tau: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The same estimator by pairwise comparison of codes (oracle of :func:`lsh_combine`). -> (N, d)."""
    ci, cs = simhash_codes(items, planes, tau), simhash_codes(seq, planes, tau)  # (N, H), (L, H)
    w = (ci[:, None, :] == cs[None, :, :]).to(seq.dtype).sum(-1)  # (N, L) collisions over groups
    if mask is not None:
        w = w * mask.to(seq.dtype)[None, :]
    return (w @ seq) / w.sum(1, keepdim=True).clamp(min=1.0)


def lsh_expected_pool(
    items: torch.Tensor, seq: torch.Tensor, tau: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact twin of SDIM pooling (H -> infinity): weights ``(1 - angle/pi)^tau``. -> (N, d)."""
    cos = (
        torch.nn.functional.normalize(items, dim=-1) @ torch.nn.functional.normalize(seq, dim=-1).T
    )  # (N, L)
    w = (1.0 - torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi) ** tau
    if mask is not None:
        w = w * mask.to(seq.dtype)[None, :]
    return (w @ seq) / w.sum(1, keepdim=True).clamp(min=1e-12)
