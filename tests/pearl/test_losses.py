"""Eq. 59 / Eq. 12 pieces against hand-computed values; REINFORCE vs pathwise gradients on a toy planner."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mercato.pearl import losses as L
from mercato.pearl.config import PlannerConfig
from mercato.pearl.methods import Planner, pairwise_auc


def test_pointwise_mse() -> None:
    assert float(L.pointwise_mse(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0]))) == pytest.approx(2.5)


def test_bradley_terry_hand_value() -> None:
    # -(log sigma(1) + log sigma(-1)) / 2 = (log(1+e^-1) + log(1+e)) / 2
    got = float(L.bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])))
    assert got == pytest.approx((math.log(1 + math.exp(-1)) + math.log(1 + math.e)) / 2)
    scaled = float(L.bradley_terry_loss(torch.tensor([2.0]), torch.tensor([1.0]), scale=2.0))
    assert scaled == pytest.approx(math.log(1 + math.exp(-2)))


def test_lipschitz_hinge_hand_value() -> None:
    tau1 = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    tau2 = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # distances 5 and 1
    p1, p2 = torch.tensor([0.0, 0.0]), torch.tensor([6.0, 0.5])
    # L = 1: [6 - 5]_+ = 1, [0.5 - 1]_+ = 0 -> mean 0.5
    assert float(L.lipschitz_hinge(p1, p2, tau1, tau2, 1.0)) == pytest.approx(0.5)


def test_evaluator_loss_combines_terms() -> None:
    pred, y = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    pw, pl = torch.tensor([2.0]), torch.tensor([1.0])
    lip_terms = (torch.tensor([0.0]), torch.tensor([6.0]), torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]))
    total, parts = L.evaluator_loss(pred, y, pw, pl, lip_terms, lip=1.0, beta1=2.0, beta4=0.5)
    bt = math.log(1 + math.exp(-1))
    assert float(total) == pytest.approx(2.5 + 0.5 * bt + 2.0 * 1.0)
    assert parts == pytest.approx({"mse": 2.5, "bt": bt, "lip": 1.0})


def test_synchronous_w1_and_penalty_hand_value() -> None:
    mu1 = torch.tensor([[[0.0], [1.0], [2.0]]])  # (1, T=3, 1)
    mu2 = torch.tensor([[[1.0], [1.0], [0.0]]])
    w1 = L.synchronous_w1(mu1, mu2)
    assert float(w1[0]) == pytest.approx(3.0)  # |0-1| + 0 + |2-0|
    pen = L.planner_lipschitz_penalty(w1, torch.tensor([1.0]), torch.tensor([0.5]), lip_p=2.0)
    assert float(pen) == pytest.approx(2.0)  # [3 - 2 * 0.5]_+
    assert float(L.planner_lipschitz_penalty(w1, torch.tensor([3.0]), torch.tensor([0.0]), 2.0)) == 0.0


def test_gaussian_log_prob_and_y_star() -> None:
    got = float(L.gaussian_log_prob(torch.tensor(1.0), torch.tensor(0.0), 2.0))
    assert got == pytest.approx(-0.125 - math.log(2.0) - 0.5 * math.log(2 * math.pi))
    assert L.y_star(np.array([0.2, 0.8]), 0.05) == pytest.approx(0.84)


def test_lipschitz_estimates() -> None:
    tau = np.array([[0.0], [1.0], [3.0]])
    y = np.array([0.0, 2.0, 3.0])  # slopes 2, 1, 0.5 -> max 2
    assert L.estimate_lipschitz_y(tau, y, n_pairs=500) == pytest.approx(2.0)
    # two bins: means tau 0.5 vs 3, y 1 vs 3 (quantile edges put y=2 in the lower bin... check by construction)
    tau2 = np.array([[0.0], [0.0], [4.0], [4.0]])
    y2 = np.array([0.0, 0.0, 1.0, 1.0])
    assert L.estimate_lipschitz_planner(tau2, y2, n_bins=2) == pytest.approx(4.0)


def test_cosine_schedule_and_guidance() -> None:
    ab = L.cosine_alphas_cumprod(10)
    assert ab[0] == 1.0 and (ab[1:] < ab[:-1]).all() and float(ab[-1]) < 1e-3
    e = L.cfg_combine(torch.tensor([1.0]), torch.tensor([3.0]), 1.5)
    assert float(e) == pytest.approx(4.0)


def test_reinforce_surrogate_gradient_hand_value() -> None:
    logp = torch.tensor([1.0, 2.0], requires_grad=True)
    score = torch.tensor([3.0, 1.0])
    L.reinforce_surrogate(logp, score).backward()
    # baseline 2: advantages (1, -1); d/dlogp of -mean(adv * logp) = -adv / 2
    np.testing.assert_allclose(logp.grad.numpy(), [-0.5, 0.5])


def test_reinforce_and_pathwise_agree_in_expectation() -> None:
    """Both estimate grad_theta E_{tau ~ p_theta}[f(tau)] for a differentiable f (a linear evaluator here)."""
    torch.manual_seed(0)
    cfg = PlannerConfig(d_model=8, n_layers=1, n_heads=2, sigma=0.1)
    planner = Planner(cfg, T=3, y_scale=1.0)
    with torch.no_grad():
        planner.net.out[1].bias.fill_(1.0)  # mu around 1: the clamp at 0 is rarely active
    w = torch.tensor([1.0, -0.5, 2.0])
    n = 6000
    gen = torch.Generator().manual_seed(1)
    b, y = torch.full((n,), 0.5), torch.full((n,), 1.0)
    eta = torch.randn(n, 3, generator=gen)
    params = [p for p in planner.parameters()]

    u, _, _ = planner.rollout(b, y, eta)
    g_path = torch.autograd.grad(-(u @ w).mean(), params, allow_unused=True)
    with torch.no_grad():
        u2, _, raw = planner.rollout(b, y, eta)
    logp = L.gaussian_log_prob(raw, planner.mu(u2, b, y), planner.sigma).sum(1)
    g_rf = torch.autograd.grad(L.reinforce_surrogate(logp, u2 @ w), params, allow_unused=True)

    def flat(gs):
        return torch.cat(
            [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(gs, params)]
        )  # noqa: E731

    a, r = flat(g_path), flat(g_rf)
    cos = float(torch.nn.functional.cosine_similarity(a, r, dim=0))
    assert cos > 0.97
    assert float((a - r).norm() / a.norm()) < 0.25


def test_pairwise_auc() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert pairwise_auc(y, y) == 1.0
    assert pairwise_auc(-y, y) == 0.0
    assert pairwise_auc(np.array([1.0, 2.0, 4.0, 3.0]), y) == pytest.approx(5 / 6)
    # groups: only within-group pairs count
    assert pairwise_auc(np.array([2.0, 1.0, 1.0, 2.0]), y, np.array([0, 0, 1, 1])) == pytest.approx(0.5)
