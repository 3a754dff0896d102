"""Configs of ISA-DRE and its baselines (one dataclass per method; symbols refer to docs/isadre.md).

ISA-DRE: Chen et al., "Any-Step Density Ratio Estimation via Interval-Annealed Secant Alignment",
arXiv 2509.04852. Equation labels (A2, A3, ...) refer to the sections of the paper digest reproduced in
``docs/isadre.md`` because the paper's own equation numbers could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "ClassifierDREConfig",
    "ISADREConfig",
    "PathConfig",
    "TimeScoreDREConfig",
    "TrainConfig",
    "classifier_batch",
    "default_width",
    "resolve_classifier",
    "resolve_train",
]


def default_width(dim: int, floor: int = 128) -> int:
    """The data-scaled network width: the smallest power of two >= ``dim``, at least ``floor``.

    A width below d projects x onto fewer directions than it has (``warn_narrow``; measured on the MI
    benchmark at d = 160), so the width grows with d: 128 up to d = 128, 256 up to 256, ...
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return max(floor, 1 << (dim - 1).bit_length())


def classifier_batch(n_total: int, floor: int = 256, steps_per_epoch: int = 200) -> int:
    """The data-scaled classifier minibatch: the smallest power of two >= n_total / ``steps_per_epoch``, at
    least ``floor`` (256 up to 51k rows in all; 2048 at 400k), so that an epoch stays near 200 steps."""
    if n_total < 1:
        raise ValueError(f"n_total must be >= 1, got {n_total}")
    need = -(-n_total // steps_per_epoch)
    return max(floor, 1 << (need - 1).bit_length())


@dataclass
class PathConfig:
    """The interpolant x_t = alpha_t x0 + beta_t x1 + sigma_t z between q (t=0) and p (t=1)."""

    kind: Literal["linear", "vp", "trig"] = "trig"  # schedule of (alpha_t, beta_t), A2 (OpenDRE uses VP)
    reference: Literal["gaussian", "data"] = "data"  # 'gaussian': q is N(0, I), condition on x1 only (CTSM)
    gamma: float = 1.0  # gamma in sigma_t^2 = gamma t(1-t) + (alpha_t^2 + beta_t^2) eps, bridge noise (A2)
    noise_eps: float = (
        0.001  # eps in sigma_t^2 (a variance, standardised units), A2 bridge; chosen on the suite
    )
    beta_min: float = 0.1  # beta_min of the VP schedule
    beta_max: float = 20.0  # beta_max of the VP schedule
    t_eps: float = 1e-5  # time clamp: t in [eps, 1 - eps]
    t_end: float | None = None  # end of every query interval [eps, t_end]; None: 1 - eps

    def __post_init__(self) -> None:
        if self.reference == "data" and self.gamma <= 0 and self.noise_eps <= 0:
            raise ValueError("reference='data' needs bridge noise: set gamma > 0 or noise_eps > 0")
        if self.gamma < 0 or self.noise_eps < 0:
            raise ValueError("gamma and noise_eps must be >= 0")
        if not 0.0 <= self.t_eps < 0.5:
            raise ValueError(f"t_eps must lie in [0, 0.5), got {self.t_eps}")
        if self.t_end is not None and not 0.5 < self.t_end <= 1.0 - self.t_eps:
            raise ValueError(f"t_end must lie in (0.5, 1 - t_eps], got {self.t_end}")

    @property
    def query_end(self) -> float:
        """The end of every query interval: ``t_end``, or 1 - t_eps.

        An end below 1 skips the last stretch of the path, where the 1/Var weight of the Gaussian reference
        vanishes and the networks are barely trained (``benchmarks/isadre_horizon.py``).
        """
        return 1.0 - self.t_eps if self.t_end is None else self.t_end


@dataclass
class TrainConfig:
    """Network and optimiser of the time-conditioned MLP (shared by ISA-DRE and the time-score baseline)."""

    hidden: int | None = None  # MLP width; None: default_width(d) = max(128, next power of 2 >= d) at fit
    n_blocks: int = 3  # residual blocks (OpenDRE: 5 hidden layers of 128; 3 chosen for CPU cost)
    quadratic_rank: int | None = (
        None  # K: sum_k c_k(t) (p_k . x)^2 branch (not in OpenDRE); None: K = d at fit
    )
    emb_dim: int = 64  # E, size of the sinusoidal embeddings of t and t - l
    emb_max_freq: float = 8.0  # highest angular frequency (rad per unit t) of the sinusoidal embeddings
    n_iters: int = 1000  # optimiser steps (budget rule: 1000 x 512 pairs for every d and n, see docs)
    batch_size: int = 512  # pairs (x0, x1) per step
    lr: float = 1e-3  # Adam learning rate (OpenDRE default)
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # learning-rate decay over n_iters
    ema_decay: float = 0.995  # EMA of the weights used at inference (0 = off)
    weighting: Literal["inv_var", "inv_var_t", "none"] = (
        "inv_var_t"  # 1/Var[tau_c | t] (unbiased); inv_var: | pair (A2)
    )
    t_sampler: Literal["uniform", "lognorm", "lognorm_ends"] = "lognorm"  # distribution of t in training, A3
    t_end_mix: float = 0.2  # 'lognorm_ends': share of t drawn from arcsine Beta(1/2, 1/2) (mass at both ends)
    val_fraction: float = 0.1  # share of p and q samples held out to pick the checkpoint (0: keep the last)
    val_every: int = 100  # steps between evaluations of the held-out loss (and always at the last step)
    val_select_se: float = 2.0  # keep the latest checkpoint within this many paired SEs of the best
    seed: int = 0  # random seed of initialisation and sampling
    device: str = "cpu"  # cpu | cuda | cuda:N | mps | auto; on CUDA every draw comes from a CUDA generator

    def __post_init__(self) -> None:
        for name in ("hidden", "n_blocks", "emb_dim", "n_iters", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.quadratic_rank is not None and self.quadratic_rank < 0:
            raise ValueError(f"quadratic_rank must be >= 0, got {self.quadratic_rank}")
        if self.emb_max_freq <= 0.5:
            raise ValueError(f"emb_max_freq must exceed the lowest frequency 0.5, got {self.emb_max_freq}")
        if self.emb_dim % 2:
            raise ValueError(f"emb_dim must be even, got {self.emb_dim}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must lie in [0, 0.5), got {self.val_fraction}")
        if self.val_select_se < 0:
            raise ValueError(f"val_select_se must be >= 0, got {self.val_select_se}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be >= 1, got {self.val_every}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.t_sampler not in ("uniform", "lognorm", "lognorm_ends"):
            raise ValueError(
                f"t_sampler must be 'uniform', 'lognorm' or 'lognorm_ends', got {self.t_sampler!r}"
            )
        if self.weighting not in ("inv_var", "inv_var_t", "none"):
            raise ValueError(f"weighting must be 'inv_var', 'inv_var_t' or 'none', got {self.weighting!r}")
        if not 0.0 <= self.t_end_mix <= 1.0:
            raise ValueError(f"t_end_mix must lie in [0, 1], got {self.t_end_mix}")


@dataclass
class ISADREConfig:
    """ISA-DRE: secant network u(x, l, t) trained by Secant Alignment, with Contraction Interval Annealing."""

    path: PathConfig = field(default_factory=PathConfig)  # interpolant, A2
    train: TrainConfig = field(default_factory=TrainConfig)  # network and optimiser
    aligned_ratio: float = 0.25  # probability of l = t (pure tangent training), A3 (OpenDRE class default)
    full_ratio: float = 0.5  # probability of the longest interval the CIA cap allows (U = 1); not in A3
    anneal: Literal["linear", "cosine", "none"] = "linear"  # CIA ramp of Delta_max(k); 'none' = ablation
    anneal_fraction: float = 0.3  # K_warm / K, fraction of training spent ramping Delta_max to 1
    anneal_start: float = 0.02  # Delta_max(0), the interval cap at the first step
    derivative: Literal["partial", "total"] = "partial"  # d/dt of u at fixed x, or along the path (OpenDRE)
    n_steps: int = 1  # N, default number of inference steps (NFE)
    grid_a: float = 1.5  # a in the warped grid t_i = sigmoid(a logit(i/N) + b)
    grid_b: float = 0.2  # b in the warped grid

    def __post_init__(self) -> None:
        if not 0.0 <= self.aligned_ratio <= 1.0:
            raise ValueError(f"aligned_ratio must lie in [0, 1], got {self.aligned_ratio}")
        if not 0.0 <= self.full_ratio <= 1.0:
            raise ValueError(f"full_ratio must lie in [0, 1], got {self.full_ratio}")
        if not 0.0 < self.anneal_fraction <= 1.0:
            raise ValueError(f"anneal_fraction must lie in (0, 1], got {self.anneal_fraction}")
        if not 0.0 <= self.anneal_start <= 1.0:
            raise ValueError(f"anneal_start must lie in [0, 1], got {self.anneal_start}")
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")


@dataclass
class TimeScoreDREConfig:
    """DRE-infinity baseline: tangent network tau(x, t), integrated over t by quadrature or an ODE solver."""

    path: PathConfig = field(default_factory=PathConfig)  # interpolant, A2
    train: TrainConfig = field(default_factory=TrainConfig)  # network and optimiser
    integrator: Literal["quadrature", "ode"] = "quadrature"  # how log r = int_0^1 tau(x, t) dt is computed
    n_quad_steps: int = 100  # K trapezoid intervals (NFE = K + 1); DRE-infinity default 100
    rtol: float = 1e-5  # ODE relative tolerance (RK45; DRE-infinity uses dopri5, 1e-5)
    atol: float = 1e-5  # ODE absolute tolerance

    def __post_init__(self) -> None:
        if self.n_quad_steps < 1:
            raise ValueError(f"n_quad_steps must be >= 1, got {self.n_quad_steps}")


@dataclass
class ClassifierDREConfig:
    """Classifier DRE: log r(x) = logit P(p | x) + log(n_q / n_p)."""

    model: Literal["logistic", "mlp"] = "mlp"  # sklearn LogisticRegression or a torch MLP (two hidden layers)
    quadratic: bool = False  # logistic only: add squared features x_j^2 (a Gaussian log ratio is quadratic)
    hidden: int | None = None  # MLP width (two hidden layers); None: max(256, 2^k >= d) at fit (suite-chosen)
    max_iter: int = 200  # solver iterations (MLP: maximum epochs)
    C: float = 1.0  # inverse L2 strength of the logistic model
    alpha: float = 1e-4  # decoupled weight decay of the MLP (AdamW)
    lr: float = 1e-3  # MLP Adam learning rate
    batch_size: int | None = None  # MLP minibatch; None: classifier_batch(n_p + n_q), 256 up to 51k rows
    patience: int = 10  # MLP early stopping: epochs without a lower held-out loss (chosen on the suite)
    seed: int = 0  # random seed
    device: str = "cpu"  # MLP only: cpu | cuda | cuda:N | mps | auto

    def __post_init__(self) -> None:
        for name in ("hidden", "max_iter", "batch_size", "patience"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


def resolve_train(train: TrainConfig, dim: int) -> TrainConfig:
    """``train`` with its data-scaled fields filled for data of ``dim`` features (``fit`` and reloading).

    ``hidden`` None -> :func:`default_width` (d); ``quadratic_rank`` None -> d (a full-rank quadratic form:
    a Gaussian log ratio, and its time score, is quadratic in x). Set fields are kept.
    """
    return replace(
        train,
        hidden=default_width(dim) if train.hidden is None else train.hidden,
        quadratic_rank=dim if train.quadratic_rank is None else train.quadratic_rank,
    )


def resolve_classifier(cfg: ClassifierDREConfig, dim: int, n_total: int) -> ClassifierDREConfig:
    """``cfg`` with ``hidden`` (None -> :func:`default_width` (d, floor 256): 256 up to d = 256, the width the
    suite's validation round chose) and ``batch_size`` (None -> :func:`classifier_batch` (n_p + n_q)) filled.
    Set fields are kept."""
    return replace(
        cfg,
        hidden=default_width(dim, floor=256) if cfg.hidden is None else cfg.hidden,
        batch_size=classifier_batch(n_total) if cfg.batch_size is None else cfg.batch_size,
    )
