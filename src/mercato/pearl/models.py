"""Networks: MLPs, a causal transformer, the temporal U-Net of DiffBid.

Units: a trajectory's dynamic state is u_t = T * c_t / B (the cost ratio of step t times T, so a uniform
pacing has u = 1); the static feature is b = B / B_max. Actions are modelled as log a_t.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MLP", "CausalTransformer", "TemporalUNet", "timestep_embedding"]


class MLP(nn.Module):
    """Two hidden layers with SiLU."""

    def __init__(self, d_in: int, d_out: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, d_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CausalTransformer(nn.Module):
    """Per-step tokens (B, L, d_in) -> outputs (B, L, d_out); position t sees tokens 0..t only."""

    def __init__(
        self, d_in: int, d_out: int, d_model: int, n_layers: int, n_heads: int, max_len: int
    ) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.body = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_out))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        h = self.inp(tokens) + self.pos(torch.arange(length, device=tokens.device))[None]  # (B, L, D)
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        return self.out(self.body(h, mask=mask, is_causal=True))  # (B, L, d_out)


def timestep_embedding(k: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps k (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=k.device) / half)
    args = k.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class _Res(nn.Module):
    def __init__(self, c_in: int, c_out: int, d_emb: int) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(c_in, c_out, 5, padding=2)
        self.c2 = nn.Conv1d(c_out, c_out, 5, padding=2)
        self.n1 = nn.GroupNorm(4, c_out)
        self.n2 = nn.GroupNorm(4, c_out)
        self.emb = nn.Linear(d_emb, c_out)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.act(self.n1(self.c1(x))) + self.emb(e)[:, :, None]  # (B, C, L)
        h = self.act(self.n2(self.c2(h)))
        return h + self.skip(x)


class TemporalUNet(nn.Module):
    """A small 1-D U-Net over trajectories (B, 1, L) (L divisible by 4), conditioned on (k, condition)."""

    def __init__(self, channels: int, d_cond: int) -> None:
        super().__init__()
        c = channels
        d = 2 * c
        self.emb = nn.Sequential(nn.Linear(32 + d_cond, d), nn.Mish(), nn.Linear(d, d))
        self.d1 = _Res(1, c, d)
        self.d2 = _Res(c, 2 * c, d)
        self.mid = _Res(2 * c, 2 * c, d)
        self.u2 = _Res(4 * c, c, d)
        self.u1 = _Res(2 * c, c, d)
        self.out = nn.Conv1d(c, 1, 1)
        self.pool = nn.AvgPool1d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor, k: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        e = self.emb(torch.cat([timestep_embedding(k, 32), cond], dim=1))  # (B, d)
        h1 = self.d1(x, e)  # (B, c, L)
        h2 = self.d2(self.pool(h1), e)  # (B, 2c, L/2)
        m = self.mid(self.pool(h2), e)  # (B, 2c, L/4)
        g2 = self.u2(torch.cat([self.up(m), h2], 1), e)  # (B, c, L/2)
        g1 = self.u1(torch.cat([self.up(g2), h1], 1), e)  # (B, c, L)
        return self.out(g1)  # (B, 1, L)
