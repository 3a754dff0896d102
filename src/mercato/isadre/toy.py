"""Closed-form test problems: Gaussian pairs (exact time score, secant, log ratio), correlated-Gaussian MI,
and 2-D toy densities with known log ratios.

For Gaussian endpoints q = N(m0, S0), p = N(m1, S1) every interpolant of :mod:`mercato.isadre.paths` has
Gaussian marginals p_t = N(mu_t, Sigma_t) with mu_t = alpha_t m0 + beta_t m1 and
Sigma_t = alpha_t^2 S0 + beta_t^2 S1 + sigma_t^2 I, so log p_t, the time score tau = d/dt log p_t and the
secant u(x, l, t) = (log p_t(x) - log p_l(x)) / (t - l) are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mercato.isadre.config import PathConfig
from mercato.isadre.paths import bridge_variance, path_coefficients

__all__ = [
    "GaussianPair",
    "ToyPair",
    "correlated_gaussian_pair",
    "gaussian_kl",
    "mi_correlation",
    "toy_pair",
    "TOYS",
]


def _as_t(t: torch.Tensor | float, n: int) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    return t.expand(n).clone() if t.ndim == 0 else t.to(torch.float64)


@dataclass
class GaussianPair:
    """q = N(m0, S0) at t = 0 and p = N(m1, S1) at t = 1 (full covariances), with exact path quantities."""

    m0: np.ndarray
    S0: np.ndarray
    m1: np.ndarray
    S1: np.ndarray

    @property
    def dim(self) -> int:
        """Data dimension d."""
        return int(self.m0.shape[0])

    def sample_q(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of q, (n, d)."""
        return rng.multivariate_normal(self.m0, self.S0, size=n, method="cholesky")

    def sample_p(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of p, (n, d)."""
        return rng.multivariate_normal(self.m1, self.S1, size=n, method="cholesky")

    def log_ratio(self, x: np.ndarray) -> np.ndarray:
        """Exact log p(x) - log q(x), (n,)."""
        xt = torch.as_tensor(x, dtype=torch.float64)
        m0, S0, m1, S1 = (
            torch.as_tensor(a, dtype=torch.float64) for a in (self.m0, self.S0, self.m1, self.S1)
        )
        return (_gauss_logpdf(xt, m1, S1) - _gauss_logpdf(xt, m0, S0)).numpy()

    def _moments(self, t: torch.Tensor, cfg: PathConfig) -> tuple[torch.Tensor, ...]:
        """mu_t (B, d), Sigma_t (B, d, d) and their t-derivatives for the path ``cfg``."""
        c = path_coefficients(cfg.kind, t, cfg.beta_min, cfg.beta_max)
        svar, dsvar = bridge_variance(t, c, cfg.gamma, cfg.noise_eps)
        m0, S0, m1, S1 = (
            torch.as_tensor(a, dtype=torch.float64) for a in (self.m0, self.S0, self.m1, self.S1)
        )
        eye = torch.eye(self.dim, dtype=torch.float64)
        mu = c.alpha[:, None] * m0 + c.beta[:, None] * m1  # (B, d)
        dmu = c.dalpha[:, None] * m0 + c.dbeta[:, None] * m1
        cov = (c.alpha**2)[:, None, None] * S0 + (c.beta**2)[:, None, None] * S1 + svar[:, None, None] * eye
        dcov = (
            (2 * c.alpha * c.dalpha)[:, None, None] * S0
            + (2 * c.beta * c.dbeta)[:, None, None] * S1
            + dsvar[:, None, None] * eye
        )  # (B, d, d)
        return mu, dmu, cov, dcov

    def log_prob_t(self, x: torch.Tensor, t: torch.Tensor | float, cfg: PathConfig) -> torch.Tensor:
        """Exact log p_t(x) on the path, (B,)."""
        x = x.to(torch.float64)
        mu, _, cov, _ = self._moments(_as_t(t, x.shape[0]), cfg)
        return _gauss_logpdf(x, mu, cov)

    def time_score(self, x: torch.Tensor, t: torch.Tensor | float, cfg: PathConfig) -> torch.Tensor:
        """Exact tangent tau(x, t) = d/dt log p_t(x) at fixed x (digest A2), (B,).

        tau = -1/2 tr(Sigma^-1 dSigma) + r^T Sigma^-1 dmu + 1/2 r^T Sigma^-1 dSigma Sigma^-1 r, r = x - mu_t.
        """
        x = x.to(torch.float64)
        mu, dmu, cov, dcov = self._moments(_as_t(t, x.shape[0]), cfg)
        sol = torch.linalg.solve(cov, (x - mu)[..., None])[..., 0]  # Sigma^-1 r, (B, d)
        trace = torch.linalg.solve(cov, dcov).diagonal(dim1=1, dim2=2).sum(1)  # (B,)
        quad = torch.einsum("bi,bij,bj->b", sol, dcov, sol)  # (B,)
        return -0.5 * trace + (sol * dmu).sum(1) + 0.5 * quad

    def secant(
        self, x: torch.Tensor, l: torch.Tensor | float, t: torch.Tensor | float, cfg: PathConfig
    ) -> torch.Tensor:
        """Exact secant u(x, l, t) = (1/(t - l)) int_l^t tau(x, s) ds (digest A3); u(x, t, t) = tau(x, t). (B,)."""
        n = x.shape[0]
        lt, tt = _as_t(l, n), _as_t(t, n)
        gap = tt - lt
        same = gap.abs() < 1e-12
        diff = (self.log_prob_t(x, tt, cfg) - self.log_prob_t(x, lt, cfg)) / torch.where(same, 1.0, gap)
        return torch.where(same, self.time_score(x, tt, cfg), diff)


def _gauss_logpdf(x: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, cov); x (B, d), mu (d,) or (B, d), cov (d, d) or (B, d, d)."""
    d = x.shape[-1]
    chol = torch.linalg.cholesky(cov)
    diff = (x - mu)[..., None]  # (B, d, 1)
    sol = torch.linalg.solve_triangular(chol, diff, upper=False)[..., 0]
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (sol**2).sum(-1) - 0.5 * logdet - 0.5 * d * math.log(2 * math.pi)


def gaussian_kl(m_a: np.ndarray, S_a: np.ndarray, m_b: np.ndarray, S_b: np.ndarray) -> float:
    """KL(N(m_a, S_a) || N(m_b, S_b)) = 1/2 [tr(S_b^-1 S_a) + dm^T S_b^-1 dm - d + log det S_b / det S_a]."""
    d = m_a.shape[0]
    inv_b = np.linalg.inv(S_b)
    dm = m_b - m_a
    logdet = np.linalg.slogdet(S_b)[1] - np.linalg.slogdet(S_a)[1]
    return float(0.5 * (np.trace(inv_b @ S_a) + dm @ inv_b @ dm - d + logdet))


def mi_correlation(dim: int, mi: float) -> float:
    """rho such that d/2 independent pairs with correlation rho have MI = -(d/4) log(1 - rho^2) = mi (A4)."""
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be even and >= 2, got {dim}")
    return math.sqrt(1.0 - math.exp(-4.0 * mi / dim))


def correlated_gaussian_pair(dim: int, mi: float | None = None) -> GaussianPair:
    """MI task (digest A4): p = N(0, Sigma_rho) with d/2 correlated pairs, q = N(0, I); default MI = d/4.

    The mutual information of p equals KL(p || q) = E_p[log p/q], the quantity the estimators recover.
    """
    rho = mi_correlation(dim, dim / 4.0 if mi is None else mi)
    cov = np.eye(dim)
    idx = np.arange(0, dim, 2)
    cov[idx, idx + 1] = rho
    cov[idx + 1, idx] = rho
    zero = np.zeros(dim)
    return GaussianPair(m0=zero, S0=np.eye(dim), m1=zero.copy(), S1=cov)


@dataclass
class ToyPair:
    """2-D toy: p is a Gaussian mixture (equal weights, isotropic std), q = N(0, q_std^2 I)."""

    name: str
    means: np.ndarray  # (K, 2) mixture component means
    std: float  # component standard deviation
    q_std: float = 1.0  # standard deviation of the reference q

    def sample_p(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of the mixture p, (n, 2)."""
        k = rng.integers(0, len(self.means), size=n)
        return self.means[k] + self.std * rng.standard_normal((n, 2))

    def sample_q(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of q, (n, 2)."""
        return self.q_std * rng.standard_normal((n, 2))

    def log_ratio(self, x: np.ndarray) -> np.ndarray:
        """Exact log p(x) - log q(x), (n,)."""
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)  # (n, K)
        comp = -0.5 * sq / self.std**2 - 2 * math.log(self.std) - math.log(2 * math.pi)
        log_p = np.logaddexp.reduce(comp, axis=1) - math.log(len(self.means))
        log_q = -0.5 * (x**2).sum(1) / self.q_std**2 - 2 * math.log(self.q_std) - math.log(2 * math.pi)
        return log_p - log_q


def _ring(k: int, radius: float) -> np.ndarray:
    ang = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(ang), np.sin(ang)], 1)


TOYS: dict[str, ToyPair] = {
    "8gaussians": ToyPair("8gaussians", _ring(8, 2.0), 0.3),
    "ring": ToyPair("ring", _ring(24, 1.5), 0.15),
    "two_gaussians": ToyPair("two_gaussians", np.array([[-1.0, 0.5], [1.0, -0.5]]), 0.5),
}


def toy_pair(name: str) -> ToyPair:
    """The 2-D toy called ``name`` (keys of :data:`TOYS`)."""
    if name not in TOYS:
        raise ValueError(f"unknown toy {name!r}; valid toys: {', '.join(TOYS)}")
    return TOYS[name]
