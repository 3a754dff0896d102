"""Closed-form Gaussian pairs: exact time score, exact secant, SAI, additivity, MI = d/4."""

import math

import numpy as np
import pytest
import torch

from mercato.isadre.config import PathConfig
from mercato.isadre.losses import sai_residual, secant_sum, warped_grid
from mercato.isadre.paths import sample_path
from mercato.isadre.toy import (
    GaussianPair,
    correlated_gaussian_pair,
    gaussian_kl,
    mi_correlation,
    toy_pair,
)

PATHS = [
    PathConfig(kind="linear", reference="gaussian", gamma=0.0, noise_eps=0.0),
    PathConfig(kind="vp", reference="data"),
    PathConfig(kind="trig", reference="data", gamma=0.05, noise_eps=0.01),
]


def _pair() -> GaussianPair:
    S1 = np.array([[1.5, 0.3], [0.3, 0.5]])
    return GaussianPair(m0=np.zeros(2), S0=np.eye(2), m1=np.array([1.0, -0.5]), S1=S1)


def _x(n=5, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).normal(size=(n, 2)))


def test_log_ratio_hand_value_1d():
    # p = N(2, 0.5^2), q = N(0, 1) at x = 1.7: log p - log q = -0.5*0.36/0.25 - log 0.5 + 0.5*1.7^2
    pair = GaussianPair(np.zeros(1), np.eye(1), np.array([2.0]), np.array([[0.25]]))
    expected = -0.5 * 0.09 / 0.25 - math.log(0.5) + 0.5 * 1.7**2
    assert pair.log_ratio(np.array([[1.7]]))[0] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.9581, abs=1e-4)  # the digest's closed-form check


@pytest.mark.parametrize("cfg", PATHS, ids=lambda c: c.kind)
def test_exact_time_score_is_derivative_of_log_pt(cfg):
    pair, x = _pair(), _x()
    t, h = torch.full((5,), 0.4, dtype=torch.float64), 1e-5
    fd = (pair.log_prob_t(x, t + h, cfg) - pair.log_prob_t(x, t - h, cfg)) / (2 * h)
    assert torch.allclose(pair.time_score(x, t, cfg), fd, rtol=1e-5, atol=1e-6)


def test_path_endpoints_are_q_and_p_on_linear_path():
    pair, x = _pair(), _x()
    cfg = PATHS[0]
    end = pair.log_prob_t(x, 1.0, cfg) - pair.log_prob_t(x, 0.0, cfg)
    assert np.allclose(end.numpy(), pair.log_ratio(x.numpy()))


@pytest.mark.parametrize("cfg", PATHS, ids=lambda c: c.kind)
def test_exact_secant_is_interval_average_of_time_score(cfg):
    pair, x = _pair(), _x()
    s = np.linspace(0.2, 0.7, 1001)
    xs = x.repeat(len(s), 1)  # (S * B, 2), time-major
    ts = torch.as_tensor(s).repeat_interleave(len(x))
    taus = pair.time_score(xs, ts, cfg).numpy().reshape(len(s), len(x))  # (S, B)
    avg = np.trapezoid(taus, s, axis=0) / 0.5
    assert np.allclose(pair.secant(x, 0.2, 0.7, cfg).numpy(), avg, rtol=1e-5, atol=1e-6)
    assert torch.allclose(pair.secant(x, 0.3, 0.3, cfg), pair.time_score(x, 0.3, cfg))


@pytest.mark.parametrize("cfg", PATHS, ids=lambda c: c.kind)
def test_sai_identity_holds_for_exact_secant(cfg):
    pair, x = _pair(), _x()
    lo = torch.tensor([0.1, 0.2, 0.3, 0.0, 0.5], dtype=torch.float64)
    t = torch.tensor([0.6, 0.2, 0.9, 0.5, 0.95], dtype=torch.float64)
    _, du_dt = torch.func.jvp(lambda tt: pair.secant(x, lo, tt, cfg), (t,), (torch.ones_like(t),))
    u = pair.secant(x, lo, t, cfg)
    res = sai_residual(u, du_dt, t - lo, pair.time_score(x, t, cfg))
    assert torch.allclose(res, torch.zeros_like(res), atol=1e-6)
    # a wrong secant (shifted by 1) violates the identity
    assert not torch.allclose(sai_residual(u + 1.0, du_dt, t - lo, pair.time_score(x, t, cfg)), res, atol=0.5)


def test_secant_additivity_over_partitions_and_any_step_agreement():
    pair, x, cfg = _pair(), _x(), PATHS[1]
    whole = 0.8 * pair.secant(x, 0.1, 0.9, cfg)
    parts = 0.3 * pair.secant(x, 0.1, 0.4, cfg) + 0.5 * pair.secant(x, 0.4, 0.9, cfg)
    assert torch.allclose(whole, parts)
    cfg_lin, eps = PATHS[0], 1e-5
    estimates = []
    for n in (1, 2, 4, 7):
        grid = warped_grid(n, eps=eps)
        secs = torch.stack([pair.secant(x, float(grid[i]), float(grid[i + 1]), cfg_lin) for i in range(n)])
        estimates.append(secant_sum(grid, secs))
    for est in estimates[1:]:
        assert torch.allclose(est, estimates[0], atol=1e-9)
    truth = torch.as_tensor(pair.log_ratio(x.numpy()))
    assert torch.allclose(estimates[0], truth, atol=1e-3)


def test_conditional_target_is_unbiased_for_exact_time_score():
    pair, cfg = _pair(), PATHS[0]
    rng = np.random.default_rng(1)
    n = 20_000
    x1, x0 = torch.as_tensor(pair.sample_p(n, rng)), torch.as_tensor(pair.sample_q(n, rng))
    t = torch.full((n,), 0.3, dtype=torch.float64)
    s = sample_path(cfg, x0, x1, t, torch.zeros(n, 2, dtype=torch.float64))
    resid = s.target - pair.time_score(s.xt, t, cfg)
    assert abs(float(resid.mean())) < 4 * float(resid.std()) / math.sqrt(n)
    # and the residual is uncorrelated with functions of x_t (E[tau_c | x_t] = tau)
    assert abs(float((resid * s.xt[:, 0]).mean())) < 0.05


@pytest.mark.parametrize("dim", [2, 10, 40])
def test_mi_of_correlated_gaussians_is_d_over_4(dim):
    pair = correlated_gaussian_pair(dim)
    assert gaussian_kl(pair.m1, pair.S1, pair.m0, pair.S0) == pytest.approx(dim / 4, rel=1e-9)
    x = pair.sample_p(10_000, np.random.default_rng(0))
    lr = pair.log_ratio(x)
    assert lr.mean() == pytest.approx(dim / 4, abs=4 * lr.std() / math.sqrt(len(x)))


def test_mi_correlation_hand_value():
    assert mi_correlation(40, 10.0) == pytest.approx(math.sqrt(1 - math.exp(-1)))
    assert mi_correlation(40, 10.0) == pytest.approx(0.795, abs=1e-3)
    with pytest.raises(ValueError):
        mi_correlation(3, 1.0)


def test_toy_log_ratio_matches_single_gaussian_case():
    toy = toy_pair("two_gaussians")
    x = np.array([[-1.0, 0.5]])
    assert np.isfinite(toy.log_ratio(x)).all()
    # far from both modes the ratio is tiny relative to the mode
    assert toy.log_ratio(x)[0] > toy.log_ratio(np.array([[3.0, 3.0]]))[0]
    with pytest.raises(ValueError, match="valid toys"):
        toy_pair("moons")
