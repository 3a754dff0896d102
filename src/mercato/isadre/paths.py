"""Interpolation paths between q (t = 0) and p (t = 1) and the conditional time-score target.

Digest section A2. The interpolant is x_t = alpha_t x0 + beta_t x1 + sigma_t z with x0 ~ q, x1 ~ p and
z ~ N(0, I). Two ways to condition:

* ``reference='gaussian'`` (q is N(0, I); CTSM): condition on x1 only. Then
  p_t(x | x1) = N(beta_t x1, (alpha_t^2 + sigma_t^2) I), and x0 is part of the noise.
* ``reference='data'`` (any q; D3RE bridge): condition on (x0, x1). Then
  p_t(x | x0, x1) = N(alpha_t x0 + beta_t x1, sigma_t^2 I), which needs sigma_t > 0.

Either way x_t = mu_t + s_t z_eff with a conditional mean mu_t, variance s_t^2 and standard normal z_eff, and
the conditional time score tau_c = d/dt log N(x_t; mu_t, s_t^2 I) has the closed form of
:func:`conditional_time_score`. Since p_t(x) = E_c[p_t(x | c)], the marginal time score is
tau(x, t) = E[tau_c | x_t = x], so regressing onto tau_c is unbiased.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mercato.isadre.config import PathConfig

__all__ = [
    "PathCoefficients",
    "PathSample",
    "bridge_variance",
    "conditional_time_score",
    "conditional_time_score_variance",
    "marginal_target_variance",
    "path_coefficients",
    "sample_path",
]


@dataclass(frozen=True)
class PathCoefficients:
    """alpha_t, beta_t and their time derivatives, each of shape (B,)."""

    alpha: torch.Tensor
    beta: torch.Tensor
    dalpha: torch.Tensor
    dbeta: torch.Tensor


def path_coefficients(
    kind: str, t: torch.Tensor, beta_min: float = 0.1, beta_max: float = 20.0
) -> PathCoefficients:
    """Schedules of digest A2: linear (1-t, t), VP, and trigonometric (cos(pi t/2), sin(pi t/2)).

    VP: alpha_t = exp(-t^2 (beta_max - beta_min)/4 - t beta_min/2), beta_t = sqrt(1 - alpha_t^2).
    """
    if kind == "linear":
        one = torch.ones_like(t)
        return PathCoefficients(1.0 - t, t, -one, one)
    if kind == "trig":
        h = 0.5 * math.pi
        return PathCoefficients(
            torch.cos(h * t), torch.sin(h * t), -h * torch.sin(h * t), h * torch.cos(h * t)
        )
    if kind == "vp":
        log_alpha = -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min
        dlog_alpha = -0.5 * t * (beta_max - beta_min) - 0.5 * beta_min
        alpha = torch.exp(log_alpha)
        beta = torch.sqrt(torch.clamp(1.0 - alpha**2, min=1e-12))
        dalpha = alpha * dlog_alpha
        dbeta = -alpha * dalpha / beta  # from beta^2 = 1 - alpha^2
        return PathCoefficients(alpha, beta, dalpha, dbeta)
    raise ValueError(f"unknown path kind {kind!r}; valid kinds: linear, vp, trig")


def bridge_variance(
    t: torch.Tensor, c: PathCoefficients, gamma: float, noise_eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bridge noise variance sigma_t^2 = gamma t (1 - t) + (alpha_t^2 + beta_t^2) eps and its t-derivative (A2)."""
    var = gamma * t * (1.0 - t) + (c.alpha**2 + c.beta**2) * noise_eps
    dvar = gamma * (1.0 - 2.0 * t) + 2.0 * (c.alpha * c.dalpha + c.beta * c.dbeta) * noise_eps
    return var, dvar


def conditional_time_score(
    z: torch.Tensor, mu_dot: torch.Tensor, var: torch.Tensor, dvar: torch.Tensor
) -> torch.Tensor:
    """tau_c = d/dt log N(x_t; mu_t, s_t^2 I) at x_t = mu_t + s_t z (digest A2, CTSM / bridge target).

    tau_c = -d/2 * dvar/var + <mu_dot, z>/sqrt(var) + 1/2 * (dvar/var) * ||z||^2.

    Args:
        z: standardised noise, (B, d). mu_dot: d mu_t/dt, (B, d). var, dvar: s_t^2 and its derivative, (B,).
    """
    d = z.shape[1]
    rate = dvar / var  # (B,)
    return -0.5 * d * rate + (mu_dot * z).sum(1) / torch.sqrt(var) + 0.5 * rate * (z * z).sum(1)


def conditional_time_score_variance(
    mu_dot: torch.Tensor, var: torch.Tensor, dvar: torch.Tensor
) -> torch.Tensor:
    """Var_z[tau_c] = d/2 * (dvar/var)^2 + ||mu_dot||^2 / var for z ~ N(0, I) (CTSM weight 1/Var, digest A2).

    The linear and quadratic parts of tau_c are uncorrelated under a Gaussian and Var ||z||^2 = 2d.
    """
    d = mu_dot.shape[1]
    return 0.5 * d * (dvar / var) ** 2 + (mu_dot * mu_dot).sum(1) / var


def marginal_target_variance(
    c: PathCoefficients, var: torch.Tensor, dvar: torch.Tensor, moments: tuple[torch.Tensor, ...], dim: int
) -> torch.Tensor:
    """Var[tau_c | t] = d/2 (dvar/var)^2 + E||mu_dot||^2 / var, a function of t only (weight 1/Var of A2). (B,).

    E_z[tau_c | pair] = 0, so Var[tau_c | t] is the pair average of :func:`conditional_time_score_variance`:
    E||mu_dot||^2 = dalpha^2 E||x0||^2 + dbeta^2 E||x1||^2 + 2 dalpha dbeta E<x0, x1> with ``moments`` =
    (E||x0||^2, E||x1||^2, E<x0, x1>) (scalars); the Gaussian reference has mu_dot = dbeta x1, so it passes
    (0, E||x1||^2, 0). Its inverse is the weight 'inv_var_t'. A weight that depends on the pair (OpenDRE's
    1/Var[tau_c | pair]) moves the regression's minimiser from E[tau_c | x_t] to E[w tau_c | x_t] / E[w | x_t],
    i.e. biases the time score.
    """
    m00, m11, m01 = moments
    mu_dot_sq = c.dalpha**2 * m00 + c.dbeta**2 * m11 + 2.0 * c.dalpha * c.dbeta * m01  # (B,)
    return 0.5 * dim * (dvar / var) ** 2 + mu_dot_sq / var


@dataclass(frozen=True)
class PathSample:
    """One minibatch on the path: x_t (B, d), the target tau_c (B,), its variance given the pair (B,), velocity
    dx_t/dt (B, d), and the variance given t only (B,), from the batch moments of the pairs."""

    xt: torch.Tensor
    target: torch.Tensor
    target_var: torch.Tensor
    velocity: torch.Tensor
    marginal_var: torch.Tensor


def sample_path(
    cfg: PathConfig, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
) -> PathSample:
    """Draw x_t given (x0, x1, t, fresh noise z) and return the conditional target of :func:`conditional_time_score`.

    Shapes: x0, x1, noise (B, d); t (B,). The pair moments of :func:`marginal_target_variance` are batch means.
    """
    c = path_coefficients(cfg.kind, t, cfg.beta_min, cfg.beta_max)
    svar, dsvar = bridge_variance(t, c, cfg.gamma, cfg.noise_eps)
    a, b, da, db = (v[:, None] for v in (c.alpha, c.beta, c.dalpha, c.dbeta))  # (B, 1)
    if cfg.reference == "gaussian":
        # x0 ~ N(0, I) is noise: x_t = beta x1 + sqrt(alpha^2 + sigma^2) z_eff.
        var = c.alpha**2 + svar
        dvar = 2.0 * c.alpha * c.dalpha + dsvar
        raw = a * x0 + torch.sqrt(svar)[:, None] * noise  # (B, d)
        z = raw / torch.sqrt(var)[:, None]
        mu_dot = db * x1
        zero = x1.new_zeros(())
        moments = (zero, (x1 * x1).sum(1).mean(), zero)
        xt = b * x1 + raw
        velocity = da * x0 + db * x1 + (0.5 * dsvar / torch.sqrt(svar.clamp_min(1e-30)))[:, None] * noise
    else:
        var, dvar = svar, dsvar
        z = noise
        mu_dot = da * x0 + db * x1
        moments = ((x0 * x0).sum(1).mean(), (x1 * x1).sum(1).mean(), (x0 * x1).sum(1).mean())
        xt = a * x0 + b * x1 + torch.sqrt(var)[:, None] * noise
        velocity = mu_dot + (0.5 * dvar / torch.sqrt(var))[:, None] * noise
    target = conditional_time_score(z, mu_dot, var, dvar)
    marginal = marginal_target_variance(c, var, dvar, moments, x1.shape[1])
    return PathSample(xt, target, conditional_time_score_variance(mu_dot, var, dvar), velocity, marginal)
