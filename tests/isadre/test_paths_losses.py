"""Hand-computed checks of the path schedules, the conditional target and the pure loss functions."""

import math

import numpy as np
import pytest
import torch

from mercato.isadre.config import PathConfig, TrainConfig
from mercato.isadre.losses import (
    interval_cap,
    sai_residual,
    sai_target,
    sample_intervals,
    sample_times,
    secant_alignment_loss,
    secant_sum,
    target_weight,
    time_score_matching_loss,
    warped_grid,
)
from mercato.isadre.paths import (
    bridge_variance,
    conditional_time_score,
    conditional_time_score_variance,
    path_coefficients,
    sample_path,
)
from mercato.isadre.toy import GaussianPair


def test_path_coefficients_hand_values():
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    lin = path_coefficients("linear", t)
    assert torch.allclose(lin.alpha, torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64))
    assert torch.allclose(lin.dbeta, torch.ones(3, dtype=torch.float64))
    trig = path_coefficients("trig", t)
    assert torch.allclose(trig.alpha[1], torch.tensor(math.sqrt(0.5), dtype=torch.float64))
    assert torch.allclose(trig.dalpha[2], torch.tensor(-math.pi / 2, dtype=torch.float64))
    vp = path_coefficients("vp", torch.tensor([1.0], dtype=torch.float64))
    # alpha_1 = exp(-(20 - 0.1)/4 - 0.1/2) = exp(-5.025)
    assert math.isclose(float(vp.alpha), math.exp(-5.025), rel_tol=1e-9)
    assert math.isclose(float(vp.alpha**2 + vp.beta**2), 1.0, rel_tol=1e-9)
    with pytest.raises(ValueError, match="valid kinds"):
        path_coefficients("nope", t)


@pytest.mark.parametrize("kind", ["linear", "vp", "trig"])
def test_path_derivatives_match_finite_differences(kind):
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    h = 1e-6
    c, cp, cm = (path_coefficients(kind, t + s) for s in (0.0, h, -h))
    assert torch.allclose(c.dalpha, (cp.alpha - cm.alpha) / (2 * h), rtol=1e-5)
    assert torch.allclose(c.dbeta, (cp.beta - cm.beta) / (2 * h), rtol=1e-5)
    var, dvar = bridge_variance(t, c, 0.01, 0.005)
    vp_, _ = bridge_variance(t + h, cp, 0.01, 0.005)
    vm_, _ = bridge_variance(t - h, cm, 0.01, 0.005)
    assert torch.allclose(dvar, (vp_ - vm_) / (2 * h), rtol=1e-5, atol=1e-10)


def test_bridge_variance_hand_value():
    t = torch.tensor([0.5])
    var, dvar = bridge_variance(t, path_coefficients("linear", t), gamma=0.01, noise_eps=0.005)
    # 0.01 * 0.25 + (0.25 + 0.25) * 0.005 = 0.005; d/dt = 0 + 2 (0.5 * -1 + 0.5 * 1) * 0.005 = 0
    assert torch.allclose(var, torch.tensor([0.005]))
    assert torch.allclose(dvar, torch.tensor([0.0]))


def test_conditional_time_score_hand_value():
    # d = 2, z = (1, 0), mu_dot = (2, 0), var = 4, dvar = 2 -> -1/2*2*0.5 + 2/2 + 1/2*0.5*1 = 0.75
    z, mu_dot = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    var, dvar = torch.tensor([4.0]), torch.tensor([2.0])
    assert torch.allclose(conditional_time_score(z, mu_dot, var, dvar), torch.tensor([0.75]))
    # Var = d/2 (dvar/var)^2 + ||mu_dot||^2 / var = 1 * 0.25 + 4/4 = 1.25
    assert torch.allclose(conditional_time_score_variance(mu_dot, var, dvar), torch.tensor([1.25]))


def test_conditional_target_variance_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    mu_dot = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64).expand_as(z)
    var, dvar = (
        torch.full((len(z),), 0.7, dtype=torch.float64),
        torch.full((len(z),), -0.3, dtype=torch.float64),
    )
    tau = conditional_time_score(z, mu_dot, var, dvar)
    assert abs(float(tau.mean())) < 0.03  # E[tau_c | mu] = 0 for the conditional density
    assert math.isclose(
        float(tau.var()), float(conditional_time_score_variance(mu_dot, var, dvar)[0]), rel_tol=0.02
    )


def test_gaussian_reference_matches_linear_ctsm_formula():
    # CTSM target on the linear path: (-d a' + ||x0||^2 a' + <x0, x1> b') / a, a' = -1, b' = 1
    cfg = PathConfig(kind="linear", reference="gaussian", gamma=0.0, noise_eps=0.0)
    x0, x1 = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, -1.0]])
    t = torch.tensor([0.25])
    s = sample_path(cfg, x0, x1, t, torch.zeros(1, 2))
    expected = (2.0 - 5.0 + (0.5 - 2.0)) / 0.75
    assert torch.allclose(s.target, torch.tensor([expected]))
    assert torch.allclose(s.xt, 0.75 * x0 + 0.25 * x1)
    assert torch.allclose(s.velocity, x1 - x0)


def test_data_reference_requires_noise():
    with pytest.raises(ValueError, match="bridge noise"):
        PathConfig(reference="data", gamma=0.0, noise_eps=0.0)


def test_sai_target_and_residual_hand_values():
    tau, du, gap = torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([0.5])
    assert torch.allclose(sai_target(tau, du, gap), torch.tensor([2.0]))
    assert torch.allclose(sai_residual(torch.tensor([2.0]), du, gap, tau), torch.tensor([0.0]))


def test_secant_alignment_loss_value_and_stopgrad():
    u = torch.tensor([1.0, 2.0], requires_grad=True)
    du = torch.tensor([4.0, 0.0], requires_grad=True)
    loss = secant_alignment_loss(
        u, du, torch.tensor([0.5, 0.0]), torch.tensor([2.0, 1.0]), torch.tensor([1.0, 2.0])
    )
    # targets: 2 - 0.5*4 = 0 and 1; residuals 1 and 1; weighted mean (1 + 2) / 2
    assert math.isclose(float(loss.detach()), 1.5)
    loss.backward()
    assert du.grad is None or torch.all(du.grad == 0)
    assert torch.allclose(u.grad, torch.tensor([1.0, 2.0]))  # 2 * w * residual / B
    assert math.isclose(
        float(time_score_matching_loss(u, torch.tensor([0.0, 2.0]), torch.ones(2)).detach()), 0.5
    )


def test_target_weight():
    assert torch.allclose(target_weight(torch.tensor([4.0]), "inv_var"), torch.tensor([0.25]), atol=1e-6)
    assert torch.allclose(target_weight(torch.tensor([4.0]), "none"), torch.tensor([1.0]))
    pair, marg = torch.tensor([4.0]), torch.tensor([2.0])
    assert torch.allclose(target_weight(pair, "inv_var_t", marg), torch.tensor([0.5]), atol=1e-6)
    assert torch.allclose(target_weight(pair, "inv_var", marg), torch.tensor([0.25]), atol=1e-6)
    with pytest.raises(ValueError, match="marginal_var"):
        target_weight(pair, "inv_var_t")
    with pytest.raises(ValueError):
        target_weight(torch.tensor([1.0]), "bad")


def test_interval_cap_schedules():
    assert interval_cap(0, 100, "linear", 0.5, 0.1) == pytest.approx(0.1)
    assert interval_cap(25, 100, "linear", 0.5, 0.1) == pytest.approx(0.55)
    assert interval_cap(25, 100, "cosine", 0.5, 0.0) == pytest.approx(0.5)
    assert interval_cap(80, 100, "linear", 0.5, 0.1) == 1.0
    assert interval_cap(0, 100, "none", 0.5, 0.1) == 1.0
    with pytest.raises(ValueError):
        interval_cap(0, 10, "exp", 0.5, 0.1)


def test_sample_intervals_respects_cap_and_alignment():
    t = torch.tensor([0.9, 0.5, 0.05, 0.7])
    unif = torch.tensor([1.0, 0.5, 1.0, 0.3])
    aligned = torch.tensor([False, False, False, True])
    l, gap = sample_intervals(t, unif, 0.2, aligned, 1e-5)
    assert torch.allclose(l, torch.tensor([0.7, 0.4, 1e-5, 0.7]))
    assert torch.all(gap <= 0.2 + 1e-7) and gap[3] == 0
    # full_ratio: where ``full``, U = 1 (the longest interval the cap allows); alignment still wins
    full = torch.tensor([False, True, False, True])
    l, gap = sample_intervals(t, unif, 0.2, aligned, 1e-5, full)
    assert torch.allclose(l, torch.tensor([0.7, 0.3, 1e-5, 0.7]))
    assert gap[3] == 0


def test_warped_grid_and_secant_sum():
    g = warped_grid(1, eps=1e-3)
    assert torch.allclose(g, torch.tensor([1e-3, 1 - 1e-3], dtype=torch.float64))
    g2 = warped_grid(2, a=1.5, b=0.2, eps=1e-3)
    assert math.isclose(float(g2[1]), 1 / (1 + math.exp(-0.2)), rel_tol=1e-9)  # logit(1/2) = 0
    g8 = warped_grid(8)
    assert torch.all(g8[1:] > g8[:-1])
    # sum of widths * constant secant = (t_N - t_0) * c
    est = secant_sum(g8, torch.full((8, 3), 2.0, dtype=torch.float64))
    assert torch.allclose(est, torch.full((3,), 2.0 * (1 - 2e-5), dtype=torch.float64))
    g_end = warped_grid(4, eps=1e-3, end=0.9)  # an earlier query end scales the grid onto [eps, end]
    g_full = warped_grid(4, eps=1e-3)
    assert float(g_end[0]) == 1e-3 and float(g_end[-1]) == 0.9 and torch.all(g_end[1:] > g_end[:-1])
    assert torch.allclose((g_end[1:-1] - 1e-3) / (0.9 - 1e-3), g_full[1:-1])


def _times(kind, n=200_000, eps=1e-3, end_mix=0.2):
    return sample_times(kind, n, torch.Generator().manual_seed(0), eps, end_mix)


@pytest.mark.parametrize("kind", ["uniform", "lognorm", "lognorm_ends"])
def test_sample_times_stay_in_the_clamped_range(kind):
    t = _times(kind)
    assert t.shape == (200_000,)
    lo, hi = torch.tensor(1e-3), torch.tensor(1 - 1e-3)  # the float32 values of eps and 1 - eps
    assert t.dtype == torch.float32 and bool(t.min() >= lo) and bool(t.max() <= hi)


def test_lognorm_median_and_missing_endpoint_mass():
    t = _times("lognorm")
    # sigmoid(N(-0.4, 1)): median sigmoid(-0.4) = 0.401; P(t > 0.99) = P(N > 4.995) ~ 3e-7
    assert float(t.median()) == pytest.approx(1 / (1 + math.exp(0.4)), abs=0.01)
    assert float((t > 0.99).float().mean()) < 1e-4


def test_lognorm_ends_puts_arcsine_mass_near_both_endpoints():
    n, mix = 200_000, 0.2
    t = _times("lognorm_ends", n, end_mix=mix)
    # arcsine Beta(1/2, 1/2): P(t < 0.01) = P(t > 0.99) = (2/pi) arcsin(0.1) = 0.0638; times the mixture weight
    expect = mix * 2 / math.pi * math.asin(0.1)
    for mass in ((t < 0.01).float().mean(), (t > 0.99).float().mean()):
        assert float(mass) == pytest.approx(expect, abs=5 * math.sqrt(expect / n))
    # the rest keeps the lognorm body: end_mix = 0 is exactly the lognorm draw of the same generator
    assert torch.equal(_times("lognorm_ends", end_mix=0.0), _times("lognorm"))
    assert float(_times("lognorm_ends", end_mix=1.0).mean()) == pytest.approx(0.5, abs=0.01)


def test_sample_times_and_config_reject_unknown_values():
    with pytest.raises(ValueError, match="valid"):
        _times("beta")
    with pytest.raises(ValueError, match="t_end_mix"):
        TrainConfig(t_end_mix=1.5)
    with pytest.raises(ValueError, match="t_sampler"):
        TrainConfig(t_sampler="beta")  # type: ignore[arg-type]


@pytest.mark.parametrize("reference", ["gaussian", "data"])
def test_marginal_target_variance_is_the_pair_average_and_depends_on_t_only(reference):
    cfg = PathConfig(kind="trig", reference=reference, gamma=0.01, noise_eps=0.005)
    g = torch.Generator().manual_seed(0)
    n, d = 4096, 6
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    x1 = 0.5 + 2.0 * torch.randn(n, d, generator=g, dtype=torch.float64)
    t = torch.full((n,), 0.3, dtype=torch.float64)
    s = sample_path(cfg, x0, x1, t, torch.randn(n, d, generator=g, dtype=torch.float64))
    assert torch.allclose(s.marginal_var, s.marginal_var[0].expand(n))  # the same for every pair at one t
    assert torch.allclose(s.marginal_var[0], s.target_var.mean(), rtol=1e-9)  # = E_pair Var[tau_c | pair]
    assert float(s.target_var.std() / s.target_var.mean()) > 0.05  # while the pair variance does vary


def test_pair_dependent_weight_biases_the_time_score_and_the_marginal_weight_does_not():
    """Weighted least squares of tau_c onto the exact function class of a 1-D Gaussian problem at fixed t.

    The minimiser of E[w (s(x_t) - tau_c)^2] is E[w tau_c | x_t] / E[w | x_t]: a weight that depends on the pair
    (OpenDRE's 1/Var[tau_c | x1], 'inv_var') moves it off the time score E[tau_c | x_t]; 1/Var[tau_c | t] does not.
    """
    pair = GaussianPair(np.zeros(1), np.eye(1), np.zeros(1), np.array([[4.0]]))  # q = N(0, 1), p = N(0, 4)
    cfg = PathConfig(kind="trig", reference="gaussian", gamma=0.0, noise_eps=0.0)
    rng = np.random.default_rng(0)
    n = 400_000
    x1, x0 = torch.as_tensor(pair.sample_p(n, rng)), torch.as_tensor(pair.sample_q(n, rng))
    t = torch.full((n,), 0.3, dtype=torch.float64)
    s = sample_path(cfg, x0, x1, t, torch.zeros(n, 1, dtype=torch.float64))
    feats = torch.stack([torch.ones(n, dtype=torch.float64), s.xt[:, 0] ** 2], 1)  # tau = c0 + c1 x^2 exactly
    exact = torch.linalg.lstsq(feats, pair.time_score(s.xt, t, cfg)[:, None]).solution[:, 0]

    def wls(w):
        fw = feats * w[:, None]
        return torch.linalg.solve(fw.T @ feats, fw.T @ s.target)

    unbiased = wls(target_weight(s.target_var, "inv_var_t", s.marginal_var))
    biased = wls(target_weight(s.target_var, "inv_var", s.marginal_var))
    assert torch.allclose(unbiased, exact, atol=0.05)
    assert float((biased - exact).abs().max()) > 0.2
