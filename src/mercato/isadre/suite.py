"""A suite of density-ratio problems with exact log ratios, and a diagnostic a user can read on their own data.

Every problem has a closed-form or exactly computable log p(x)/q(x):

* ``gaussian``: full, non-isotropic covariances and shifted means; the covariance change and the mean shift
  are scaled so that KL(p || q) hits a target (closed form, :func:`mercato.isadre.toy.gaussian_kl`).
* ``mixture``: Gaussian mixtures p and q (log ratio by log-sum-exp over components).
* ``student_t``: a multivariate Student-t pair (different location and scale, same degrees of freedom).
* ``manifold``: p and q agree except in a random 2-D subspace, where p is a ring of Gaussians and q is
  N(0, I): the difference lives on a low-dimensional manifold.

A :class:`ProblemSpec` (family, dimension, target KL, samples a side, seed) draws one instance with
:func:`make_problem`; :func:`suite_specs` lists the grid, with validation seeds (for choosing settings) apart
from test seeds (for reporting). :func:`diagnose` checks a fitted estimator on held-out samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.special import gammaln, logsumexp

from mercato.isadre.toy import gaussian_kl

__all__ = [
    "CLASSIFIER_RULES",
    "FAMILIES",
    "PATH_RULES",
    "Problem",
    "ProblemSpec",
    "SuiteMethod",
    "TEST_GRID",
    "TEST_SEEDS",
    "VALIDATION_GRID",
    "VALIDATION_SEEDS",
    "diagnose",
    "make_problem",
    "method_config",
    "normalised_scores",
    "run_problem",
    "suite_specs",
]

Family = Literal["gaussian", "mixture", "student_t", "manifold"]
FAMILIES: tuple[str, ...] = ("gaussian", "mixture", "student_t", "manifold")
VALIDATION_SEEDS: tuple[int, ...] = (1001, 1002)  # for choosing settings only
TEST_SEEDS: tuple[int, ...] = (0, 1, 2)  # for reporting only


@dataclass(frozen=True)
class ProblemSpec:
    """One suite problem: what :func:`make_problem` draws from ``seed``."""

    family: Family  # gaussian | mixture | student_t | manifold
    dim: int  # data dimension d
    kl: float  # target KL(p || q) in nats (gaussian: exact; other families: the scale of the difference)
    n: int  # samples a side (p and q)
    seed: int  # draws the instance (covariances, means, ...) and its samples

    @property
    def name(self) -> str:
        return f"{self.family}-d{self.dim}-kl{self.kl:g}-n{self.n}"


@dataclass
class Problem:
    """A drawn problem: samplers of p and q and the exact log ratio."""

    spec: ProblemSpec
    sample_p: Callable[[int, np.random.Generator], np.ndarray]
    sample_q: Callable[[int, np.random.Generator], np.ndarray]
    log_ratio: Callable[[np.ndarray], np.ndarray]
    kl: float | None = None  # closed-form KL(p || q) where one exists

    def data(self, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """``spec.n`` samples a side of p and q; 'train' and 'test' draws are independent and reproducible."""
        offset = {"train": 0, "test": 1, "holdout": 2}[split]
        rng = np.random.default_rng([self.spec.seed, 7, offset])
        return self.sample_p(self.spec.n, rng), self.sample_q(self.spec.n, rng)


def _random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _random_cov(d: int, rng: np.random.Generator) -> np.ndarray:
    """A full covariance with eigenvalues log-uniform in [1/3, 3] and a random rotation."""
    rot = _random_rotation(d, rng)
    return (rot * np.exp(rng.uniform(-math.log(3), math.log(3), d))) @ rot.T


def _gaussian_logpdf(x: np.ndarray, m: np.ndarray, chol: np.ndarray) -> np.ndarray:
    z = np.linalg.solve(chol, (x - m).T)  # (d, n)
    logdet = 2.0 * np.log(np.diag(chol)).sum()
    return -0.5 * (z**2).sum(0) - 0.5 * logdet - 0.5 * x.shape[1] * math.log(2 * math.pi)


def _gaussian(spec: ProblemSpec, rng: np.random.Generator) -> Problem:
    """q = N(m0, S0), p = N(m1, S1), S1 = L0 M L0^T with eig(M) = exp(a g); 40 % of the KL from the
    covariance change (``a`` by bisection), 60 % from the mean shift."""
    d = spec.dim
    S0 = _random_cov(d, rng)
    L0 = np.linalg.cholesky(S0)
    g = rng.uniform(-1.0, 1.0, d)
    rot = _random_rotation(d, rng)

    def kl_cov(a: float) -> float:  # KL of N(0, M) from N(0, I)
        e = a * g
        return float(0.5 * (np.exp(e) - 1.0 - e).sum())

    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if kl_cov(mid) < 0.4 * spec.kl else (lo, mid)
    M = (rot * np.exp(lo * g)) @ rot.T
    S1 = L0 @ M @ L0.T
    S1 = 0.5 * (S1 + S1.T)
    u = L0 @ rng.standard_normal(d)
    c = math.sqrt(2.0 * (spec.kl - kl_cov(lo)) / float(u @ np.linalg.solve(S0, u)))
    m0 = rng.normal(0.0, 1.0, d)
    m1 = m0 + c * u
    C0, C1 = np.linalg.cholesky(S0), np.linalg.cholesky(S1)

    def lr(x: np.ndarray) -> np.ndarray:
        return _gaussian_logpdf(x, m1, C1) - _gaussian_logpdf(x, m0, C0)

    return Problem(
        spec,
        lambda n, r: m1 + r.standard_normal((n, d)) @ C1.T,
        lambda n, r: m0 + r.standard_normal((n, d)) @ C0.T,
        lr,
        kl=gaussian_kl(m1, S1, m0, S0),
    )


def _mixture_logpdf(x: np.ndarray, means: np.ndarray, chols: list[np.ndarray]) -> np.ndarray:
    comps = np.stack([_gaussian_logpdf(x, m, c) for m, c in zip(means, chols)], 1)  # (n, K)
    return logsumexp(comps, axis=1) - math.log(len(means))


def _mixture_sampler(means: np.ndarray, chols: list[np.ndarray]) -> Callable[..., np.ndarray]:
    def sample(n: int, r: np.random.Generator) -> np.ndarray:
        k = r.integers(0, len(means), n)
        z = r.standard_normal((n, means.shape[1]))
        out = np.empty_like(z)
        for j in range(len(means)):
            idx = k == j
            out[idx] = means[j] + z[idx] @ chols[j].T
        return out

    return sample


def _mixture(spec: ProblemSpec, rng: np.random.Generator) -> Problem:
    """p: 4 components, q: 3 wider components (it covers p), full covariances; mean spread ~ sqrt(kl / d)."""
    d = spec.dim
    spread = math.sqrt(2.0 * spec.kl / d) + 0.5
    mp, mq = rng.normal(0, spread, (4, d)), rng.normal(0, spread, (3, d))
    cp = [np.linalg.cholesky(_random_cov(d, rng)) for _ in range(4)]
    cq = [np.linalg.cholesky(2.0 * _random_cov(d, rng)) for _ in range(3)]  # q wider: it covers p
    return Problem(
        spec,
        _mixture_sampler(mp, cp),
        _mixture_sampler(mq, cq),
        lambda x: _mixture_logpdf(x, mp, cp) - _mixture_logpdf(x, mq, cq),
    )


_NU = 5.0  # degrees of freedom of the Student-t pair


def _t_logpdf(x: np.ndarray, m: np.ndarray, chol: np.ndarray, nu: float) -> np.ndarray:
    d = x.shape[1]
    z = np.linalg.solve(chol, (x - m).T)
    maha = (z**2).sum(0)
    logdet = 2.0 * np.log(np.diag(chol)).sum()
    norm = gammaln((nu + d) / 2) - gammaln(nu / 2) - 0.5 * d * math.log(nu * math.pi) - 0.5 * logdet
    return norm - 0.5 * (nu + d) * np.log1p(maha / nu)


def _student_t(spec: ProblemSpec, rng: np.random.Generator) -> Problem:
    """Multivariate t (nu = 5) pair: different full scale matrices and a location shift ~ sqrt(2 kl)."""
    d = spec.dim
    c0, c1 = np.linalg.cholesky(_random_cov(d, rng)), np.linalg.cholesky(_random_cov(d, rng))
    m0 = np.zeros(d)
    u = c0 @ rng.standard_normal(d)
    m1 = u * math.sqrt(2.0 * spec.kl / float(np.linalg.norm(np.linalg.solve(c0, u)) ** 2))

    def sampler(m: np.ndarray, c: np.ndarray) -> Callable[..., np.ndarray]:
        def sample(n: int, r: np.random.Generator) -> np.ndarray:
            w = r.chisquare(_NU, n) / _NU
            return m + (r.standard_normal((n, d)) @ c.T) / np.sqrt(w)[:, None]

        return sample

    return Problem(
        spec,
        sampler(m1, c1),
        sampler(m0, c0),
        lambda x: _t_logpdf(x, m1, c1, _NU) - _t_logpdf(x, m0, c0, _NU),
    )


def _manifold(spec: ProblemSpec, rng: np.random.Generator) -> Problem:
    """p and q share N(0, I) off a random 2-D subspace; on it p is a ring of 8 Gaussians (radius from kl)."""
    d = spec.dim
    basis = _random_rotation(d, rng)[:, :2]  # (d, 2) orthonormal
    radius = math.sqrt(2.0 * spec.kl) + 1.0
    ang = 2 * np.pi * np.arange(8) / 8
    means = radius * np.stack([np.cos(ang), np.sin(ang)], 1)
    std = 0.3
    chol = [std * np.eye(2)] * 8
    ring = _mixture_sampler(means, chol)
    eye2 = np.eye(2)

    def sample_p(n: int, r: np.random.Generator) -> np.ndarray:
        x = r.standard_normal((n, d))
        x -= (x @ basis) @ basis.T  # the orthogonal complement keeps N(0, I)
        return x + ring(n, r) @ basis.T

    def lr(x: np.ndarray) -> np.ndarray:
        z = x @ basis
        return _mixture_logpdf(z, means, chol) - _gaussian_logpdf(z, np.zeros(2), eye2)

    return Problem(spec, sample_p, lambda n, r: r.standard_normal((n, d)), lr)


_MAKERS = {"gaussian": _gaussian, "mixture": _mixture, "student_t": _student_t, "manifold": _manifold}


def make_problem(spec: ProblemSpec) -> Problem:
    """Draw the problem ``spec`` (deterministic in ``spec.seed``)."""
    if spec.family not in _MAKERS:
        raise ValueError(f"unknown family {spec.family!r}; valid: {', '.join(FAMILIES)}")
    if spec.dim < 2 or spec.kl <= 0 or spec.n < 2:
        raise ValueError(f"{spec.name}: need dim >= 2, kl > 0 and n >= 2")
    return _MAKERS[spec.family](spec, np.random.default_rng([spec.seed, 13]))


# the suite's grid, (family, d, KL, n a side); sized for this project's CPU budget (about 60 CPU-minutes for
# the validation round, the test seeds and the MI row together; docs/isadre.md says what was left out)
TEST_GRID: tuple[tuple[str, int, float, int], ...] = (
    ("gaussian", 2, 1.0, 20_000),
    ("gaussian", 2, 10.0, 20_000),
    ("gaussian", 2, 50.0, 20_000),
    ("gaussian", 10, 10.0, 2_000),
    ("gaussian", 40, 50.0, 20_000),
    ("mixture", 10, 20.0, 20_000),
    ("student_t", 10, 20.0, 20_000),
)
# validation problems: three of the test grid (d = 2 and 40 Gaussians, the Student-t pair), on other seeds
VALIDATION_GRID: tuple[tuple[str, int, float, int], ...] = (
    ("gaussian", 2, 10.0, 20_000),
    ("gaussian", 40, 50.0, 20_000),
    ("student_t", 10, 20.0, 20_000),
)


def suite_specs(split: Literal["validation", "test"] = "test", quick: bool = False) -> list[ProblemSpec]:
    """The suite's grid on validation or test seeds.

    Test (:data:`TEST_GRID`): Gaussians at d = 2 (KL 1, 10, 50; n = 20k), d = 10 (KL 10, n = 2k), d = 40 (KL 50,
    n = 20k), and the mixture and Student-t pairs at d = 10, scale 20 (n = 20k). Other problems (any family, d,
    KL and n) are drawn with :class:`ProblemSpec` and :func:`make_problem`.
    Validation (:data:`VALIDATION_GRID`): three of them. ``quick``: two small problems.
    """
    if split not in ("validation", "test"):
        raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    seeds = VALIDATION_SEEDS if split == "validation" else TEST_SEEDS
    if quick:
        grid: tuple[tuple[str, int, float, int], ...] = (
            ("gaussian", 2, 10.0, 2000),
            ("manifold", 4, 2.0, 2000),
        )
        return [ProblemSpec(f, d, k, n, seeds[0]) for f, d, k, n in grid]  # type: ignore[arg-type]
    grid = VALIDATION_GRID if split == "validation" else TEST_GRID
    return [ProblemSpec(f, d, k, n, s) for s in seeds for f, d, k, n in grid]  # type: ignore[arg-type]


def normalised_scores(
    pred_p: np.ndarray, true_p: np.ndarray, pred_q: np.ndarray, true_q: np.ndarray
) -> dict[str, float]:
    """Log-ratio MSE on p's and on q's test points apart, each over the variance of the true log ratio on the
    same points; ``score`` is the mean of the two normalised MSEs (the suite's primary score).

    Pooling p and q points lets the far q points of a well-separated pair decide everything (their true log
    ratio varies by thousands of nats^2 at KL 50); apart, each half counts the same. A score of 1 is the error
    of predicting each half's mean log ratio everywhere.
    """
    out: dict[str, float] = {}
    for side, pred, true in (("p", pred_p, true_p), ("q", pred_q, true_q)):
        mse = float(np.mean((pred - true) ** 2))
        var = float(true.var())
        out[f"mse_{side}"] = mse
        out[f"var_{side}"] = var
        out[f"nmse_{side}"] = mse / var if var > 0 else float("nan")
    out["score"] = 0.5 * (out["nmse_p"] + out["nmse_q"])
    return out


def diagnose(estimator: Any, X_p: Any, X_q: Any) -> dict[str, float]:
    """Checks of a fitted estimator on held-out samples of p and q, readable without the true ratio.

    Returns:
        ``weight_mean`` and ``weight_se``: E_q[r_hat] and its standard error (should be 1 within a few SEs:
        the importance weights of q must average to one); ``weight_z`` = (weight_mean - 1) / weight_se;
        ``p_inv_weight_mean``: E_p[1 / r_hat] (also 1 for the true ratio); ``logistic_loss``: the held-out
        classification objective -1/2 (E_p log sigmoid(l) + E_q log sigmoid(-l)) of l = log r_hat (lower is
        better; log 2 = 0.693 for no information); ``kl_dv``: the Donsker-Varadhan bound
        E_p[log r_hat] - log E_q[r_hat] <= KL(p || q); ``ess_fraction``: the effective sample size of the
        weights on q over n (small: a few points carry the weight).

    The standard error assumes the weights have a finite variance. Where p has heavier tails than q in some
    direction it does not, and even the true ratio can show |weight_z| > 4 with a small ``ess_fraction``:
    read a large z together with the ESS (measured on the suite's Gaussian pair, d = 3, KL 1, seed 0).
    """
    lp = np.asarray(estimator.log_ratio(X_p), dtype=np.float64)
    lq = np.asarray(estimator.log_ratio(X_q), dtype=np.float64)
    w = np.exp(np.clip(lq, -700, 700))
    mean, se = float(w.mean()), float(w.std(ddof=1) / math.sqrt(len(w)))
    loss = 0.5 * (float(np.logaddexp(0.0, -lp).mean()) + float(np.logaddexp(0.0, lq).mean()))
    log_mean_w = float(logsumexp(lq) - math.log(len(lq)))
    return {
        "weight_mean": mean,
        "weight_se": se,
        "weight_z": (mean - 1.0) / se if se > 0 else float("inf") * np.sign(mean - 1.0),
        "p_inv_weight_mean": float(np.exp(np.clip(-lp, -700, 700)).mean()),
        "logistic_loss": loss,
        "kl_dv": float(lp.mean()) - log_mean_w,
        "ess_fraction": float(w.sum() ** 2 / (w**2).sum() / len(w)) if w.sum() > 0 else 0.0,
    }


# One round of choosing defaults (validation seeds only): candidate rules, each a set of config fields (keys
# "path.<field>" set PathConfig, the others TrainConfig); the rule with the lowest median score over the
# validation problems becomes the package default of its class. The first rule is the previous library setting
# (at the new budget). The bridge's endpoint noise eps (path.noise_eps) is varied because at eps = 0.1 the
# target itself is biased: the path's ends are p and q smoothed by N(0, eps) in standardised units, which on a
# Gaussian pair with a narrow direction (d = 2, KL 10) moves the exact log ratio of the ends by about twice the
# variance of the true one (computed in closed form for that problem's validation seed).
_BUDGET = {
    "hidden": None,
    "n_blocks": 3,
    "n_iters": 1000,
    "batch_size": 512,
}  # width from d, 1000 x 512 pairs
PATH_RULES: dict[str, dict[str, Any]] = {
    "inv_var, eps 0.1, no quadratic branch": {
        **_BUDGET,
        "weighting": "inv_var",
        "quadratic_rank": 0,
        "path.noise_eps": 0.1,
    },
    "inv_var_t, eps 0.1, quadratic K = d": {
        **_BUDGET,
        "weighting": "inv_var_t",
        "quadratic_rank": None,
        "path.noise_eps": 0.1,
    },
    "inv_var_t, eps 0.01, quadratic K = d": {
        **_BUDGET,
        "weighting": "inv_var_t",
        "quadratic_rank": None,
        "path.noise_eps": 0.01,
    },
    "inv_var_t, eps 0.001, quadratic K = d": {
        **_BUDGET,
        "weighting": "inv_var_t",
        "quadratic_rank": None,
        "path.noise_eps": 0.001,
    },
}
CLASSIFIER_RULES: dict[str, dict[str, Any]] = {
    "width max(128, 2^k >= d), patience 5": {"hidden": None, "batch_size": None, "patience": 5},
    "width 256, patience 10": {"hidden": 256, "batch_size": None, "patience": 10},
}


@dataclass(frozen=True)
class SuiteMethod:
    """One estimator of the suite benchmark: package defaults (``ISADRE()``, ...) unless ``overrides`` are set."""

    method: Literal["isadre", "dre_inf", "classifier"]  # estimator class
    steps: tuple[int, ...] = (1,)  # query steps (ISA-DRE: N; DRE-inf: trapezoid intervals K)
    n_eval: int = (
        10_000  # query points: n_eval / 2 (at most the problem's n) from each side's test draw, scored apart
    )
    smoke: bool = False  # True: tiny networks and few steps (the benchmark's --quick), not the defaults
    overrides: Mapping[str, Any] = field(
        default_factory=dict
    )  # TrainConfig (path) / ClassifierDREConfig fields


def method_config(method: SuiteMethod) -> Any:
    """The config ``method`` fits with: None (package defaults) unless ``smoke`` or ``overrides`` are set."""
    from mercato.isadre.config import (
        ClassifierDREConfig,
        ISADREConfig,
        PathConfig,
        TimeScoreDREConfig,
        TrainConfig,
    )

    if method.method not in ("isadre", "dre_inf", "classifier"):
        raise ValueError(f"unknown method {method.method!r}; valid: isadre, dre_inf, classifier")
    over = dict(method.overrides)
    if method.smoke:  # tiny sizes win over a rule's (a smoke run checks the plumbing, not the rule)
        tiny = {"hidden": 16, "max_iter": 3}
        if method.method != "classifier":
            tiny = {"n_iters": 30, "hidden": 16, "n_blocks": 1, "emb_dim": 16, "batch_size": 128}
        over = {**over, **tiny}
    if not over:
        return None
    if method.method == "classifier":
        return ClassifierDREConfig(**over)
    path = PathConfig(**{k[5:]: v for k, v in over.items() if k.startswith("path.")})
    train = TrainConfig(**{k: v for k, v in over.items() if not k.startswith("path.")})
    if method.method == "isadre":
        return ISADREConfig(path=path, train=train)
    return TimeScoreDREConfig(path=path, train=train)


def run_problem(method: SuiteMethod, spec: ProblemSpec) -> dict[str, Any]:
    """Fit ``method`` on ``spec``'s training draw; log-ratio errors on its test draw, p and q points apart
    (``n_eval / 2`` of each side, or all ``spec.n`` of them where that is fewer).

    Returns per query step count the fields of :func:`normalised_scores` (``mse_p``, ``nmse_p``, ``mse_q``,
    ``nmse_q``, ``score``) and ``query_s``; plus ``fit_s``, ``kl`` (closed form where one exists, else the
    Monte-Carlo mean of the exact log ratio on the p test points, ``kl_mc``) and the diagnostic of
    :func:`diagnose` on a held-out draw.
    """
    import time

    from mercato.isadre.baselines import ClassifierDRE, TimeScoreDRE
    from mercato.isadre.estimator import ISADRE

    prob = make_problem(spec)
    xp, xq = prob.data("train")
    cls: Any = {"isadre": ISADRE, "dre_inf": TimeScoreDRE, "classifier": ClassifierDRE}[method.method]
    est = cls(method_config(method))
    t0 = time.perf_counter()
    est.fit(xp, xq)
    fit_s = time.perf_counter() - t0
    tp, tq = prob.data("test")
    half = min(method.n_eval // 2, len(tp), len(tq))  # a side's test draw holds spec.n points
    x = np.concatenate([tp[:half], tq[:half]])
    truth = prob.log_ratio(x)
    kl_mc = float(truth[:half].mean())
    out: dict[str, Any] = {
        "fit_s": fit_s,
        "kl": prob.kl if prob.kl is not None else kl_mc,
        "kl_mc": kl_mc,
        "steps": {},
    }
    for k in method.steps:
        t0 = time.perf_counter()
        pred = est.log_ratio(x, steps=k)
        q_s = time.perf_counter() - t0
        out["steps"][str(k)] = {
            **normalised_scores(pred[:half], truth[:half], pred[half:], truth[half:]),
            "query_s": q_s,
        }
    hp, hq = prob.data("holdout")
    out["diagnose"] = diagnose(est, hp[:half], hq[:half])
    return out
