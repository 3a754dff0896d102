"""Time-conditioned residual MLPs: the secant network u(x, l, t) and the tangent network tau(x, t).

Architecture after OpenDRE's tabular model (digest A3): sinusoidal embeddings of t and of (t - l),
concatenated and fused by Linear(2E -> E) - SiLU - Linear(E -> E); residual MLP blocks conditioned on the
fused embedding; a scalar head. The tangent network is the same model with only the t embedding.

Optional quadratic branch (``train.quadratic_rank`` > 0, not in OpenDRE): sum_k c_k(e) (p_k . x)^2, a
rank-K quadratic form in x whose coefficients depend on the time embedding. An MLP with SiLU grows only
linearly far from its training data, while a Gaussian log ratio (and its time score) is quadratic in x; where
the queries lie far out in the tails of the path marginals (x ~ p at small t, the density chasm) the branch
extrapolates the quadratic growth that the MLP cannot.
"""

from __future__ import annotations

import torch
from torch import nn

from mercato.isadre.config import TrainConfig, resolve_train

__all__ = ["ResidualBlock", "TimeConditionedMLP", "build_network", "sinusoidal_embedding"]


def sinusoidal_embedding(
    t: torch.Tensor, dim: int, min_freq: float = 0.5, max_freq: float = 64.0
) -> torch.Tensor:
    """[sin(w_k t), cos(w_k t)] with w_k geometric from min_freq to max_freq rad per unit t. (B,) -> (B, dim).

    Smooth in t with |d/dt| <= max_freq, so forward-mode derivatives in t are exact and of moderate size
    (a transformer-style 1000 t scaling makes d/dt u, hence the SAI target, huge).
    """
    half = dim // 2
    ramp = torch.arange(half, dtype=t.dtype, device=t.device) / max(1, half - 1)
    freqs = min_freq * (max_freq / min_freq) ** ramp  # (E/2,)
    args = t[:, None] * freqs[None]  # (B, E/2)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # (B, E)


class ResidualBlock(nn.Module):
    """h + W2 SiLU(W1 SiLU(h) + P e): a residual block conditioned on the time embedding e.

    No LayerNorm: normalising h would discard the scale of x, which a Gaussian log ratio depends on.
    """

    def __init__(self, hidden: int, emb_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, hidden)
        self.emb = nn.Linear(emb_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.act = nn.SiLU()

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """h (B, H), e (B, E) -> (B, H)."""
        return h + self.fc2(self.act(self.fc1(self.act(h)) + self.emb(e)))


class TimeConditionedMLP(nn.Module):
    """u(x, l, t) when ``secant`` is True (embeddings of t and t - l), else tau(x, t).

    ``forward(x, t, l)`` returns a (B,) tensor; ``n_calls`` counts forward calls (NFE bookkeeping).
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        n_blocks: int = 4,
        emb_dim: int = 64,
        secant: bool = True,
        max_freq: float = 64.0,
        quadratic_rank: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.emb_dim, self.secant, self.max_freq = dim, emb_dim, secant, max_freq
        n_emb = 2 if secant else 1
        self.fuse = nn.Sequential(nn.Linear(n_emb * emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, emb_dim) for _ in range(n_blocks))
        self.head = nn.Linear(hidden, 1)
        self.quad_proj: nn.Linear | None = None
        self.quad_coef: nn.Linear | None = None
        if quadratic_rank > 0:
            self.quad_proj = nn.Linear(dim, quadratic_rank, bias=False)  # directions p_k
            self.quad_coef = nn.Linear(emb_dim, quadratic_rank)  # c_k(e), zero at init: the branch starts off
            nn.init.zeros_(self.quad_coef.weight)
            nn.init.zeros_(self.quad_coef.bias)
        self.n_calls = 0

    def forward(self, x: torch.Tensor, t: torch.Tensor, l: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, d), t (B,), l (B,) or None -> (B,)."""
        self.n_calls += 1
        parts = [sinusoidal_embedding(t, self.emb_dim, max_freq=self.max_freq)]
        if self.secant:
            if l is None:
                raise ValueError("the secant network needs the interval start l")
            parts.append(sinusoidal_embedding(t - l, self.emb_dim, max_freq=self.max_freq))
        e = self.fuse(torch.cat(parts, dim=1))  # (B, E)
        h = self.inp(x)  # (B, H)
        for block in self.blocks:
            h = block(h, e)
        out = self.head(torch.nn.functional.silu(h))[:, 0]
        if self.quad_proj is not None and self.quad_coef is not None:
            # sum_k c_k(e) (p_k . x)^2: coefficients (B, K) times squared projections (B, K), summed -> (B,)
            out = out + (self.quad_coef(e) * self.quad_proj(x) ** 2).sum(1)
        return out


def build_network(dim: int, train: TrainConfig, secant: bool) -> TimeConditionedMLP:
    """The network that ``train`` describes, for data of ``dim`` features (fit and checkpoint loading).

    Data-scaled fields (``hidden``, ``quadratic_rank`` None) are resolved for ``dim`` (:func:`resolve_train`)."""
    train = resolve_train(train, dim)
    assert train.hidden is not None and train.quadratic_rank is not None  # resolved
    return TimeConditionedMLP(
        dim,
        train.hidden,
        train.n_blocks,
        train.emb_dim,
        secant=secant,
        max_freq=train.emb_max_freq,
        quadratic_rank=train.quadratic_rank,
    )
