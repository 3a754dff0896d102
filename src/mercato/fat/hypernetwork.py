"""Basis-Composed Hypernetwork (FAT §3.4) and the per-field linear layer whose weights it synthesizes.

For each parameter type ``Phi`` (Q, K, V, O, FFN1, FFN2) there are ``M`` shared bases ``B_{m,Phi}`` of the
shape of one field's weight, a field meta-embedding ``phi_f in R^k`` and a one-layer router
``g_Phi: R^k -> R^M``::

    pi_f = TopK(g_Phi(phi_f), K),   a_f = softmax(g_Phi(phi_f)[pi_f]),   W_Phi^(f) = sum_{m in pi_f} a_{f,m} B_{m,Phi}

The math lives in the pure functions :func:`top_k_routing`, :func:`compose_bases` and
:func:`load_balance_loss`; :class:`BasisBank` holds the parameters and :class:`FieldLinear` applies per-field
weights (free, shared, or basis-composed) as ``einsum('bfd,fde->bfe')``. The composition depends on fields
only, never on samples: it runs once per forward pass, and :meth:`FieldLinear.freeze` stores the composed
weights so that serving pays nothing for the hypernetwork.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BasisBank", "FieldLinear", "compose_bases", "gumbel_noise", "load_balance_loss", "top_k_routing"]


def top_k_routing(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Router mixing weights ``a`` (§3.4): softmax over each row's top-``k`` logits, zero elsewhere.

    Gradients reach only the selected logits (the straight choice; the paper's is unconfirmed [U]).

    Args:
        logits: ``(F, M)`` router logits ``g(phi_f)``.
        k: K, bases kept per field; ``0`` mixes all M bases with a dense softmax.

    Returns:
        ``(F, M)`` non-negative weights, each row summing to 1 with at most ``k`` non-zeros.
    """
    if k <= 0 or k >= logits.shape[-1]:
        return torch.softmax(logits, dim=-1)  # (F, M)
    values, index = logits.topk(k, dim=-1)  # (F, K), (F, K)
    return torch.zeros_like(logits).scatter(-1, index, torch.softmax(values, dim=-1))  # (F, M)


def gumbel_noise(shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel samples ``-log(-log U)`` (noisy top-K routing during training)."""
    u = torch.rand(shape, device=like.device, dtype=like.dtype).clamp(1e-9, 1.0 - 1e-9)
    return -torch.log(-torch.log(u))


def compose_bases(weights: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    """``W^(f) = sum_m a_{f,m} B_m`` (§3.4): ``(F, M) x (M, d_in, d_out) -> (F, d_in, d_out)``."""
    return torch.einsum("fm,mio->fio", weights, bases)  # (F, d_in, d_out)


def load_balance_loss(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer style balance loss over fields (optional; not in the paper).

    ``M * sum_m frac_m * P_m`` where ``frac_m`` is the share of routing slots (fields x K) that went to basis
    ``m`` and ``P_m`` the mean router probability of ``m`` over fields. It equals 1 when routing is uniform
    and grows as fields collapse onto few bases; gradients flow through ``P``.

    Args:
        logits: ``(F, M)`` router logits.
        weights: ``(F, M)`` the routing weights of :func:`top_k_routing` (their support gives ``frac``).
    """
    m = logits.shape[-1]
    selected = (weights > 0).to(logits.dtype)  # (F, M)
    frac = selected.sum(dim=0) / selected.sum().clamp(min=1.0)  # (M,)
    prob = torch.softmax(logits, dim=-1).mean(dim=0)  # (M,)
    return m * (frac * prob).sum()


class BasisBank(nn.Module):
    """``M`` bases ``(M, d_in, d_out)`` and the router ``Linear(k, M, bias=False)`` of one parameter type."""

    def __init__(self, num_bases: int, in_dim: int, out_dim: int, meta_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.bases = nn.Parameter(torch.empty(num_bases, in_dim, out_dim).uniform_(-bound, bound))
        self.router = nn.Linear(meta_dim, num_bases, bias=False)

    def compose(
        self, meta: torch.Tensor, top_k: int, noise: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-field weights ``(F, d_in, d_out)`` from meta-embeddings ``(F, k)``; also logits and mixing weights."""
        logits = self.router(meta)  # (F, M)
        routed = logits + gumbel_noise(logits.shape, logits) if noise else logits
        weights = top_k_routing(routed, top_k)  # (F, M)
        return compose_bases(weights, self.bases), logits, weights


class FieldLinear(nn.Module):
    """``y_i = x_i W^(f_i) + b^(f_i)`` for each token ``i`` of field ``f_i``.

    Three kinds: ``shared`` (one ``W`` for all fields: a plain linear layer), free per-field weights
    ``(F, d_in, d_out)``, or weights composed by a :class:`BasisBank` (``bank``; it may be shared with other
    layers). Biases are always free, per field (or shared).
    """

    def __init__(
        self,
        num_fields: int,
        in_dim: int,
        out_dim: int,
        shared: bool = False,
        bank: BasisBank | None = None,
        bias: bool = True,
        owns_bank: bool = True,
    ) -> None:
        super().__init__()
        self.shared = shared
        self.in_dim, self.out_dim = in_dim, out_dim
        n = 1 if shared else num_fields
        # an owned bank is a submodule; a bank shared across layers is registered once by the model and only
        # referenced here (a plain list), so state_dict holds each tensor once (safetensors refuses aliases)
        self.bank = bank if (bank is not None and not shared and owns_bank) else None
        self._shared_bank = [bank] if (bank is not None and not shared and not owns_bank) else []
        self.weight: nn.Parameter | None = None
        if self.bank is None and not self._shared_bank:
            bound = 1.0 / math.sqrt(in_dim)
            self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n, out_dim)) if bias else None
        self.last_logits: torch.Tensor | None = None
        self.last_routing: torch.Tensor | None = None

    def field_weights(
        self, field_ids: torch.Tensor, meta: torch.Tensor | None = None, top_k: int = 0, noise: bool = False
    ) -> torch.Tensor:
        """The weights of the fields ``field_ids``: ``(F, d_in, d_out)``, or ``(1, d_in, d_out)`` if shared."""
        if self.shared:
            assert self.weight is not None
            return self.weight  # (1, d_in, d_out)
        bank = self.basis_bank
        if bank is not None:
            if meta is None:
                raise ValueError("a basis-composed FieldLinear needs the field meta-embeddings")
            w, self.last_logits, self.last_routing = bank.compose(meta[field_ids], top_k, noise)
            return w  # (F, d_in, d_out)
        assert self.weight is not None
        return self.weight[field_ids]  # (F, d_in, d_out)

    def forward(
        self,
        x: torch.Tensor,
        field_ids: torch.Tensor,
        meta: torch.Tensor | None = None,
        top_k: int = 0,
        noise: bool = False,
    ) -> torch.Tensor:
        """``(B, F, d_in) -> (B, F, d_out)``."""
        w = self.field_weights(field_ids, meta, top_k, noise)
        if self.shared:
            y = x @ w[0]  # (B, F, d_out)
        else:
            y = torch.einsum("bfd,fde->bfe", x, w)  # (B, F, d_out)
        if self.bias is not None:
            y = y + (self.bias if self.shared else self.bias[field_ids])  # (B, F, d_out)
        return y

    @property
    def basis_bank(self) -> BasisBank | None:
        """The bank composing this layer's weights (owned or shared), or None."""
        return self.bank if self.bank is not None else (self._shared_bank[0] if self._shared_bank else None)

    def aux_loss(self) -> torch.Tensor | None:
        """Load-balance loss of the last composition (None without a bank)."""
        if self.basis_bank is None or self.last_logits is None or self.last_routing is None:
            return None
        return load_balance_loss(self.last_logits, self.last_routing)

    @torch.no_grad()
    def freeze(self, meta: torch.Tensor, top_k: int) -> None:
        """Replace the hypernetwork by its composed weights for all fields (export for serving)."""
        bank = self.basis_bank
        if bank is None:
            return
        w, _, _ = bank.compose(meta, top_k, noise=False)  # (F, d_in, d_out)
        if self.bank is not None:
            del self.bank
        self.bank = None
        self._shared_bank = []
        self.weight = nn.Parameter(w.detach().clone())
        self.last_logits = self.last_routing = None
