"""The equations of AIGB-Pearl and DiffBid as small pure functions (ICLR version; see docs/pearl.md).

Trajectories tau are (B, D) tensors (the flattened states of one trajectory); predictions are (B,).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "bradley_terry_loss",
    "cfg_combine",
    "cosine_alphas_cumprod",
    "estimate_lipschitz_planner",
    "estimate_lipschitz_y",
    "evaluator_loss",
    "gaussian_log_prob",
    "lipschitz_hinge",
    "planner_lipschitz_penalty",
    "pointwise_mse",
    "reinforce_surrogate",
    "synchronous_w1",
    "y_star",
]


def pointwise_mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """E_D[(y_phi(tau) - y(tau))^2], the first term of Eq. 59."""
    return ((pred - y) ** 2).mean()


def bradley_terry_loss(pred_w: torch.Tensor, pred_l: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """E_{(tau_w, tau_l) in D_p}[-log sigma(scale * (y_phi(tau_w) - y_phi(tau_l)))], Eq. 59's pair-wise term."""
    return -F.logsigmoid(scale * (pred_w - pred_l)).mean()


def lipschitz_hinge(
    pred1: torch.Tensor, pred2: torch.Tensor, tau1: torch.Tensor, tau2: torch.Tensor, lip: float
) -> torch.Tensor:
    """E[ |y_phi(tau1) - y_phi(tau2)| - L_e ||tau1 - tau2||_F ]_+, Eq. 59's third term (L_e = sqrt(T) R_m in
    the paper's bound; Algorithm 1 sets it from data)."""
    dist = (tau1 - tau2).flatten(1).norm(dim=1)  # (B,) Frobenius norm per pair
    return F.relu((pred1 - pred2).abs() - lip * dist).mean()


def evaluator_loss(
    pred: torch.Tensor,
    y: torch.Tensor,
    pair_w: torch.Tensor,
    pair_l: torch.Tensor,
    lip_terms: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    lip: float,
    beta1: float,
    beta4: float,
    bt_scale: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """l_e = MSE + beta4 * BT + beta1 * Lipschitz hinge (Eq. 59); returns the loss and its parts."""
    mse = pointwise_mse(pred, y)
    bt = bradley_terry_loss(pair_w, pair_l, bt_scale) if pair_w.numel() else pred.new_zeros(())
    hinge = lipschitz_hinge(*lip_terms, lip)
    total = mse + beta4 * bt + beta1 * hinge
    return total, {"mse": float(mse.detach()), "bt": float(bt.detach()), "lip": float(hinge.detach())}


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, sigma: float) -> torch.Tensor:
    """log N(x; mu, sigma^2), elementwise (the planner's fixed-sigma Gaussian head)."""
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def synchronous_w1(mu1: torch.Tensor, mu2: torch.Tensor) -> torch.Tensor:
    """W1 estimate by synchronous coupling with fixed sigma: sum_t ||mu(s^1_{1:t}, y1) - mu(s^2_{1:t}, y2)||
    for means (B, T, D) of two rollouts driven by the same noise (section 4.2); returns (B,)."""
    return (mu1 - mu2).norm(dim=-1).sum(dim=1)


def planner_lipschitz_penalty(
    w1: torch.Tensor, y1: torch.Tensor, y2: torch.Tensor, lip_p: float
) -> torch.Tensor:
    """E_{y1, y2}[ W1(y1, y2; theta) - L_p |y1 - y2| ]_+, Eq. 12's third term."""
    return F.relu(w1 - lip_p * (y1 - y2).abs()).mean()


def reinforce_surrogate(
    log_prob_sum: torch.Tensor, score: torch.Tensor, baseline: bool = True
) -> torch.Tensor:
    """-E[(y_phi(tau) - b) sum_t log p_theta(s_t | s_<t, y*)]: its gradient is minus the score-function
    gradient of Eq. 55 (b = batch-mean baseline, which leaves the expectation unchanged)."""
    adv = score.detach() - (score.detach().mean() if baseline else 0.0)
    return -(adv * log_prob_sum).mean()


def y_star(y: np.ndarray, eps: float) -> float:
    """y* = (1 + eps) * y_m with y_m the best quality in the data (App. B)."""
    return float((1.0 + eps) * np.max(y))


def estimate_lipschitz_y(
    tau: np.ndarray, y: np.ndarray, n_pairs: int = 20000, rng: np.random.Generator | None = None
) -> float:
    """Algorithm 1 step 1: max over sampled pairs of |y1 - y2| / ||tau1 - tau2||_F (tau (N, D))."""
    rng = rng or np.random.default_rng(0)
    i, j = rng.integers(0, len(y), (2, n_pairs))
    d = np.linalg.norm(tau[i] - tau[j], axis=1)
    ok = d > 1e-9
    if not ok.any():
        return 0.0
    return float(np.max(np.abs(y[i] - y[j])[ok] / d[ok]))


def estimate_lipschitz_planner(tau: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Lipschitz constant of y -> p_D(tau | y) in W1 (Eq. 10's lower bound for L_p), from quantile bins of y:
    max over adjacent bins of ||mean tau_a - mean tau_b||_F / |mean y_a - mean y_b| (||E X - E Y|| <= W1,
    so this is a lower estimate of each bin pair's W1 ratio)."""
    edges = np.quantile(y, np.linspace(0, 1, n_bins + 1))
    idx = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, n_bins - 1)
    means, ys = [], []
    for b in range(n_bins):
        m = idx == b
        if m.sum() >= 2:
            means.append(tau[m].mean(0))
            ys.append(y[m].mean())
    best = 0.0
    for a in range(len(ys) - 1):
        dy = abs(ys[a + 1] - ys[a])
        if dy > 1e-9:
            best = max(best, float(np.linalg.norm(means[a + 1] - means[a]) / dy))
    return best


def cosine_alphas_cumprod(k: int, s: float = 0.008) -> torch.Tensor:
    """alpha-bar_k of the cosine schedule (Nichol & Dhariwal 2021), k = 0..K (App. B's beta schedule)."""
    steps = torch.arange(k + 1, dtype=torch.float64) / k
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    ab = f / f[0]
    betas = (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)]).float()


def cfg_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, omega: float) -> torch.Tensor:
    """Classifier-free guidance: eps(tau_k, k) + omega (eps(tau_k, y, k) - eps(tau_k, k)) (App. B)."""
    return eps_uncond + omega * (eps_cond - eps_uncond)
