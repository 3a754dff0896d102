"""Configs of ISA-DRE and its baselines (one dataclass per method; symbols refer to docs/isadre.md).

ISA-DRE: Chen et al., "Any-Step Density Ratio Estimation via Interval-Annealed Secant Alignment",
arXiv 2509.04852. Equation labels (A2, A3, ...) refer to the sections of the paper digest reproduced in
``docs/isadre.md`` because the paper's own equation numbers could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ClassifierDREConfig", "ISADREConfig", "PathConfig", "TimeScoreDREConfig", "TrainConfig"]


@dataclass
class PathConfig:
    """The interpolant x_t = alpha_t x0 + beta_t x1 + sigma_t z between q (t=0) and p (t=1)."""

    kind: Literal["linear", "vp", "trig"] = "trig"  # schedule of (alpha_t, beta_t), A2 (OpenDRE uses VP)
    reference: Literal["gaussian", "data"] = "data"  # 'gaussian': q is N(0, I), condition on x1 only (CTSM)
    gamma: float = 1.0  # gamma in sigma_t^2 = gamma t(1-t) + (alpha_t^2 + beta_t^2) eps, bridge noise (A2)
    noise_eps: float = 0.1  # eps in sigma_t^2 (a variance), A2 bridge
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

    hidden: int = 128  # width of the residual MLP (OpenDRE tabular model: 128)
    n_blocks: int = 4  # residual blocks (OpenDRE: 5 hidden layers of 128)
    quadratic_rank: int = 0  # K > 0: add sum_k c_k(t) (p_k . x)^2, a quadratic branch (not in OpenDRE)
    emb_dim: int = 64  # E, size of the sinusoidal embeddings of t and t - l
    emb_max_freq: float = 8.0  # highest angular frequency (rad per unit t) of the sinusoidal embeddings
    n_iters: int = 2000  # optimiser steps
    batch_size: int = 512  # pairs (x0, x1) per step
    lr: float = 1e-3  # Adam learning rate (OpenDRE default)
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # learning-rate decay over n_iters
    ema_decay: float = 0.995  # EMA of the weights used at inference (0 = off)
    weighting: Literal["inv_var", "inv_var_t", "none"] = "inv_var"  # 1/Var[tau_c | pair] (A2); _t: | t only
    t_sampler: Literal["uniform", "lognorm", "lognorm_ends"] = "lognorm"  # distribution of t in training, A3
    t_end_mix: float = 0.2  # 'lognorm_ends': share of t drawn from arcsine Beta(1/2, 1/2) (mass at both ends)
    val_fraction: float = 0.1  # share of p and q samples held out to pick the checkpoint (0: keep the last)
    val_every: int = 100  # steps between evaluations of the held-out loss (and always at the last step)
    val_select_se: float = 2.0  # keep the latest checkpoint within this many paired SEs of the best
    seed: int = 0  # random seed of initialisation and sampling
    device: str = "cpu"  # cpu | cuda | cuda:N | mps | auto; on CUDA every draw comes from a CUDA generator

    def __post_init__(self) -> None:
        for name in ("hidden", "n_blocks", "emb_dim", "n_iters", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.quadratic_rank < 0:
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
    hidden: int = 128  # MLP width (two hidden layers)
    max_iter: int = 200  # solver iterations (MLP: maximum epochs)
    C: float = 1.0  # inverse L2 strength of the logistic model
    alpha: float = 1e-4  # decoupled weight decay of the MLP (AdamW)
    lr: float = 1e-3  # MLP Adam learning rate
    batch_size: int = 256  # MLP minibatch size
    patience: int = 5  # MLP early stopping: epochs without a lower held-out loss
    seed: int = 0  # random seed
    device: str = "cpu"  # MLP only: cpu | cuda | cuda:N | mps | auto

    def __post_init__(self) -> None:
        for name in ("hidden", "max_iter", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
