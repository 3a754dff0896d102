"""Pure functions of ISA-DRE: the SAI loss, the time-score loss, the CIA interval cap, the warped grid and
the any-step secant sum. Section labels refer to the paper digest (docs/isadre.md)."""

from __future__ import annotations

import math

import torch

__all__ = [
    "interval_cap",
    "sample_intervals",
    "sai_residual",
    "sai_target",
    "sample_times",
    "secant_alignment_loss",
    "secant_sum",
    "target_weight",
    "time_score_matching_loss",
    "warped_grid",
]


def sai_target(tau: torch.Tensor, du_dt: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    """Secant Alignment Identity (A3): u(x, l, t) = tau(x, t) - (t - l) * d/dt u(x, l, t). All (B,)."""
    return tau - gap * du_dt


def sai_residual(u: torch.Tensor, du_dt: torch.Tensor, gap: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """u + (t - l) du/dt - tau: zero for the exact secant (derivative of (t - l) u = int_l^t tau in t, A3)."""
    return u + gap * du_dt - tau


def target_weight(
    target_var: torch.Tensor, weighting: str, marginal_var: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample weight lambda of the regression onto tau_c (A2). (B,).

    'inv_var': 1/Var[tau_c | t, pair] (``target_var``; OpenDRE's weight). It depends on the pair, so the
    regression's minimiser is E[w tau_c | x_t] / E[w | x_t], not the time score (biased; it down-weights the
    noisiest pairs, which lowers the variance); see :func:`~mercato.isadre.paths.marginal_target_variance`.
    'inv_var_t': 1/Var[tau_c | t] (``marginal_var``, a function of t only: unbiased). 'none': 1.
    """
    if weighting == "none":
        return torch.ones_like(target_var)
    if weighting == "inv_var":
        return 1.0 / (target_var + 1e-8)
    if weighting == "inv_var_t":
        if marginal_var is None:
            raise ValueError("weighting 'inv_var_t' needs marginal_var (PathSample.marginal_var)")
        return 1.0 / (marginal_var + 1e-8)
    raise ValueError(f"unknown weighting {weighting!r}; valid: inv_var, inv_var_t, none")


def secant_alignment_loss(
    u: torch.Tensor, du_dt: torch.Tensor, gap: torch.Tensor, tau_c: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """SAI loss (A3): E[ lambda * (u - sg(tau_c - (t - l) du/dt))^2 ].

    The target is detached (stop-gradient), so gradients flow only through u. With l = t it reduces to
    conditional time-score matching; its fixed point is the exact secant because E[tau_c | x_t] = tau.
    """
    target = sai_target(tau_c, du_dt, gap).detach()
    return (weight * (u - target) ** 2).mean()


def time_score_matching_loss(s: torch.Tensor, tau_c: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Conditional time-score matching (A2, CTSM): E[ lambda * (s(x_t, t) - tau_c)^2 ]."""
    return (weight * (s - tau_c) ** 2).mean()


def interval_cap(step: int, n_iters: int, schedule: str, fraction: float, start: float) -> float:
    """Contraction Interval Annealing (A3): the cap Delta_max(k) on t - l at step k.

    Ramps from ``start`` to 1 over the first ``fraction * n_iters`` steps ('linear' or 'cosine'), then stays 1;
    ``'none'`` (the ablation) is 1 from the start.
    """
    if schedule == "none":
        return 1.0
    progress = min(1.0, step / max(1.0, fraction * n_iters))
    if schedule == "linear":
        ramp = progress
    elif schedule == "cosine":
        ramp = 0.5 * (1.0 - math.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown anneal schedule {schedule!r}; valid: linear, cosine, none")
    return start + (1.0 - start) * ramp


def sample_intervals(
    t: torch.Tensor,
    unif: torch.Tensor,
    cap: float,
    aligned: torch.Tensor,
    eps: float,
    full: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """l = max(eps, t - U * Delta_max), and l = t where ``aligned`` (A3). Returns (l, t - l), each (B,).

    Where ``full`` (B,) is True, U = 1: the longest interval the CIA cap allows, l = max(eps, t - Delta_max), so
    intervals that start at the q end (the family u(x, eps, t) of the one-step query) are not rare.
    """
    if full is not None:
        unif = torch.where(full, torch.ones_like(unif), unif)
    l = torch.clamp(t - unif * cap, min=eps)
    l = torch.where(aligned, t, l)
    return l, t - l


def sample_times(
    kind: str, n: int, gen: torch.Generator, eps: float = 1e-5, end_mix: float = 0.2
) -> torch.Tensor:
    """Training times t in [eps, 1 - eps] (A3), (n,).

    'uniform'; 'lognorm': sigmoid(N(-0.4, 1)) (OpenDRE), which almost never reaches the ends (P(t > 0.99) ~ 3e-7)
    although inference queries t = 1 - eps; 'lognorm_ends': the lognorm draw, replaced with probability
    ``end_mix`` by an arcsine Beta(1/2, 1/2) draw sin^2(pi V / 2), V ~ U(0, 1), whose mass near each end is
    P(t < delta) = (2/pi) arcsin(sqrt(delta)) (delta = 0.01: 6.4 %).
    """
    if kind == "uniform":
        t = torch.rand(n, generator=gen, device=gen.device)
    elif kind in ("lognorm", "lognorm_ends"):
        t = torch.sigmoid(torch.randn(n, generator=gen, device=gen.device) - 0.4)
        if kind == "lognorm_ends":
            u = torch.rand(n, generator=gen, device=gen.device)
            ends = torch.sin(0.5 * math.pi * u) ** 2  # arcsine law
            t = torch.where(torch.rand(n, generator=gen, device=gen.device) < end_mix, ends, t)
    else:
        raise ValueError(f"unknown t_sampler {kind!r}; valid: uniform, lognorm, lognorm_ends")
    return eps + (1.0 - 2.0 * eps) * t


def warped_grid(
    n_steps: int, a: float = 1.5, b: float = 0.2, eps: float = 1e-5, end: float | None = None
) -> torch.Tensor:
    """Inference grid t_i = sigmoid(a logit(i/N) + b), i = 0..N, endpoints clamped to [eps, end] (A3).

    ``end`` defaults to 1 - eps; with an earlier end the warped grid is scaled onto [eps, end].
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    s = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
    inner = torch.sigmoid(a * torch.logit(s[1:-1]) + b)
    stop = 1.0 - eps if end is None else float(end)
    if stop < 1.0 - eps:
        inner = eps + inner * (stop - eps)
    grid = torch.cat(
        [torch.tensor([eps], dtype=torch.float64), inner, torch.tensor([stop], dtype=torch.float64)]
    )
    return grid.clamp(eps, stop)


def secant_sum(grid: torch.Tensor, secants: torch.Tensor) -> torch.Tensor:
    """Any-step estimate (A3): log r = sum_i (t_i - t_{i-1}) u(x, t_{i-1}, t_i). grid (N+1,), secants (N, B) -> (B,)."""
    widths = (grid[1:] - grid[:-1]).to(secants.dtype)  # (N,)
    return (widths[:, None] * secants).sum(0)
