"""ISA-DRE estimator: ``ISADRE(config).fit(X_p, X_q).log_ratio(X, steps=N)`` estimates log p(x)/q(x).

Training (digest A3) samples t, an interval start l <= t capped by Contraction Interval Annealing, a point
x_t on the interpolant, and regresses the secant network onto the Secant Alignment target
tau_c - (t - l) d/dt u(x_t, l, t) (stop-gradient), with d/dt at fixed x by a forward-mode JVP (or along the
path with ``derivative='total'``). Inference is u(x, eps, 1 - eps) for one step, or the secant sum over a
warped grid for N steps; NFE = N.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array

from mercato.core.device import resolve_device
from mercato.core.progress import progress
from mercato.isadre.config import ISADREConfig, PathConfig, TrainConfig, resolve_train
from mercato.isadre.losses import (
    interval_cap,
    sample_intervals,
    sample_times,
    secant_alignment_loss,
    secant_sum,
    target_weight,
    warped_grid,
)
from mercato.isadre.networks import TimeConditionedMLP, build_network
from mercato.isadre.paths import PathSample, sample_path

__all__ = [
    "ISADRE",
    "PathDREBase",
    "check_fitted",
    "check_pair",
    "check_query",
    "feature_names",
    "record_feature_names",
    "select_checkpoint",
    "warn_narrow",
]

logger = logging.getLogger(__name__)

_CHUNK = 65536  # rows per network call at inference
_VAL_PAIRS = 4096  # at most this many held-out (q, p) pairs score a checkpoint
_VAL_CHUNKS = 16  # the held-out pairs are scored in this many groups (paired standard error of a difference)


def _column_names(X: Any) -> list[str] | None:
    """The column names of a DataFrame-like ``X`` (all strings), else None (arrays carry no names)."""
    cols = getattr(X, "columns", None)
    if cols is None:
        return None
    names = list(cols)
    if not all(isinstance(c, str) for c in names):
        return None  # scikit-learn records names only when every column name is a string
    return names


def _align_columns(X: Any, names: list[str], what: str) -> Any:
    """``X`` with its columns in the order ``names``; a clear error naming missing and extra columns."""
    have = _column_names(X)
    if have is None:
        return X
    missing = [c for c in names if c not in have]
    extra = [c for c in have if c not in names]
    if missing or extra:
        raise ValueError(
            f"{what}: columns differ from those seen in fit; missing: {missing or 'none'}, "
            f"extra: {extra or 'none'} (fit columns: {names})"
        )
    return X[names] if have != names else X


def feature_names(X_p: Any, X_q: Any) -> tuple[Any, list[str] | None]:
    """The feature names of a fit (``X_p``'s columns, as scikit-learn's ``feature_names_in_``) and ``X_q``
    reordered to them. Arrays: (X_q, None)."""
    names = _column_names(X_p)
    if names is None:
        return X_q, None
    return _align_columns(X_q, names, "X_q"), names


def record_feature_names(est: Any, X_p: Any, X_q: Any) -> Any:
    """Set ``est.feature_names_in_`` from a DataFrame ``X_p`` (drop it for arrays); return ``X_q`` aligned."""
    X_q, names = feature_names(X_p, X_q)
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    return X_q


def check_pair(X_p: Any, X_q: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate the numerator and denominator samples: 2-D, finite, at least 2 rows, same number of features.

    A DataFrame ``X_q`` is reordered to ``X_p``'s columns (an error names missing or extra ones)."""
    X_q, _ = feature_names(X_p, X_q)
    out = []
    for name, X in (("X_p", X_p), ("X_q", X_q)):
        try:
            arr = check_array(X, dtype=np.float64, ensure_all_finite=True, ensure_min_samples=2)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from err
        out.append(arr)
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(f"X_p has {out[0].shape[1]} features but X_q has {out[1].shape[1]}; they must match")
    return out[0], out[1]


def warn_narrow(hidden: int, n_features: int, option: str) -> None:
    """Warn when the network is narrower than the data: its first layer then projects x onto ``hidden`` < d
    directions, and the log ratio along the directions it drops cannot be represented (measured on the MI
    benchmark: at d = 160 every width-128 estimator stopped far below the truth)."""
    if hidden < n_features:
        logger.warning(
            "%s = %d is below the number of features (%d): the network cannot represent a log ratio that "
            "depends on all of them; raise %s to at least %d",
            option,
            hidden,
            n_features,
            option,
            n_features,
        )


def check_fitted(est: Any, attribute: str) -> None:
    """Raise sklearn's NotFittedError when ``fit`` has not been called."""
    if not hasattr(est, attribute):
        raise NotFittedError(
            f"This {type(est).__name__} instance is not fitted yet. Call 'fit' with X_p and X_q before using it."
        )


def check_query(est: Any, X: Any) -> np.ndarray:
    """Validate query points against the features seen in ``fit``.

    A DataFrame is reordered to ``feature_names_in_`` (recorded when ``fit`` saw a DataFrame); a missing or
    extra column is an error that names it, so a query in another column order gives the same log ratio.
    """
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        X = _align_columns(X, list(names), "X")
    try:
        arr = check_array(X, dtype=np.float64, ensure_all_finite=True)
    except ValueError as err:
        raise ValueError(f"X: {err}") from err
    if arr.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {type(est).__name__} was fitted with {est.n_features_in_}"
        )
    return arr


def select_checkpoint(group_losses: list[np.ndarray], n_se: float) -> int:
    """Index of the latest checkpoint whose held-out loss is within ``n_se`` paired standard errors of the lowest.

    ``group_losses[k]`` (G,) holds checkpoint k's loss on G fixed groups of held-out pairs (the same draw for
    every k). The regression target tau_c is noisy (with a data bridge its variance grows like 1/sigma_t^2), so
    the held-out loss of one draw can favour a barely trained network by chance; a checkpoint replaces a later
    one only where it is lower by more than ``n_se`` standard errors of the group-wise difference. n_se = 0: the
    lowest loss (the latest on ties).
    """
    means = np.array([g.mean() for g in group_losses])
    low = int(np.argmin(means))
    for k in range(len(group_losses) - 1, low, -1):
        diff = group_losses[k] - group_losses[low]  # (G,)
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        if diff.mean() <= n_se * se:
            return k
    return low


class _PathDREConfig(Protocol):
    """What the shared fit loop reads from a path estimator's config (ISADREConfig, TimeScoreDREConfig)."""

    path: PathConfig
    train: TrainConfig


class PathDREBase(BaseEstimator):
    """Shared fit loop of the path-based estimators (ISA-DRE and the time-score baseline).

    Subclasses set ``_secant`` and implement ``_loss(net, batch, t, step)`` and ``log_ratio``.
    """

    _secant = True

    def __init__(self, config: Any = None) -> None:
        self.config = config

    @property
    def cfg(self) -> _PathDREConfig:  # pragma: no cover - each subclass returns its typed config
        raise NotImplementedError

    def _path_cfg(self) -> PathConfig:
        return self.cfg.path

    def _train_cfg(self) -> TrainConfig:
        return self.cfg.train

    def _loss(
        self, net: TimeConditionedMLP, x0: torch.Tensor, x1: torch.Tensor, gen: torch.Generator, step: int
    ) -> torch.Tensor:
        raise NotImplementedError

    def _sample_t(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Training times t in [eps, 1 - eps] from ``train.t_sampler`` (:func:`sample_times`, A3). (n,)."""
        tcfg = self._train_cfg()
        return sample_times(tcfg.t_sampler, n, gen, self._path_cfg().t_eps, tcfg.t_end_mix)

    def _transform(self, X: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
        """Shared affine standardisation (leaves p/q unchanged); identity when q is the N(0, I) reference.

        On ``device``, default the fitted network's device (inference runs where the network lives).
        """
        if device is None:
            device = self.device_
        return torch.as_tensor((X - self.shift_) / self.scale_, dtype=torch.float32).to(device)

    @property
    def device_(self) -> torch.device:
        """The device of the fitted network (``train.device`` at fit time; CPU after loading a checkpoint)."""
        check_fitted(self, "network_")
        return next(self.network_.parameters()).device

    def fit(self, X_p: Any, X_q: Any) -> PathDREBase:
        """Fit on samples of the numerator p (t = 1) and the denominator q (t = 0). Returns self."""
        X_q = record_feature_names(self, X_p, X_q)
        Xp, Xq = check_pair(X_p, X_q)
        pcfg = self._path_cfg()
        # data-scaled defaults (width, quadratic rank) resolved for this d; the network is built from these
        tcfg = self.train_config_ = resolve_train(self._train_cfg(), Xp.shape[1])
        if pcfg.reference == "gaussian":
            self.shift_, self.scale_ = np.zeros(Xq.shape[1]), np.ones(Xq.shape[1])
            gap = float(np.abs(Xq.mean(0)).max() + np.abs(Xq.std(0) - 1.0).max())
            if gap > 0.25:
                logger.warning(
                    "reference='gaussian' assumes q = N(0, I), but X_q's moments differ by %.2f", gap
                )
        else:
            both = np.concatenate([Xp, Xq])
            self.shift_, self.scale_ = both.mean(0), both.std(0) + 1e-8
        self.n_features_in_ = Xp.shape[1]
        warn_narrow(tcfg.hidden or 0, Xp.shape[1], "train.hidden")
        dev = resolve_device(tcfg.device)
        # every training draw (pairs, t, intervals, noise) comes from one generator on the training device, so
        # nothing crosses to the host per step; on the CPU the stream is the same as before devices existed
        gen = torch.Generator(device=dev).manual_seed(tcfg.seed)
        torch.manual_seed(tcfg.seed)
        net = build_network(Xp.shape[1], tcfg, self._secant).to(dev)
        ema = copy.deepcopy(net).requires_grad_(False) if tcfg.ema_decay > 0 else net
        opt = torch.optim.Adam(net.parameters(), lr=tcfg.lr)
        sched: torch.optim.lr_scheduler.LRScheduler | None = None
        if tcfg.lr_schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tcfg.n_iters)
        tp, tq = self._transform(Xp, dev), self._transform(Xq, dev)
        tp, tq, val_loss = self._split_validation(tp, tq, tcfg)
        history: list[float] = []
        # (step, held-out loss per group (G,), EMA weights) at every evaluation
        checkpoints: list[tuple[int, np.ndarray, dict[str, torch.Tensor]]] = []
        for step in progress(range(tcfg.n_iters), desc=type(self).__name__, leave=False):
            i1 = torch.randint(0, tp.shape[0], (tcfg.batch_size,), generator=gen, device=dev)
            i0 = torch.randint(0, tq.shape[0], (tcfg.batch_size,), generator=gen, device=dev)
            loss = self._loss(net, tq[i0], tp[i1], gen, step)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{type(self).__name__}: non-finite loss at step {step}; lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if ema is not net:
                decay = min(tcfg.ema_decay, (1.0 + step) / (10.0 + step))  # warm-up: no pull towards the init
                with torch.no_grad():
                    for pe, p in zip(ema.parameters(), net.parameters()):
                        pe.lerp_(p, 1.0 - decay)
            history.append(float(loss.detach()))
            if val_loss is not None and ((step + 1) % tcfg.val_every == 0 or step + 1 == tcfg.n_iters):
                checkpoints.append((step + 1, val_loss(ema), copy.deepcopy(ema.state_dict())))
        best = select_checkpoint([c[1] for c in checkpoints], tcfg.val_select_se) if checkpoints else None
        if best is not None:
            ema.load_state_dict(checkpoints[best][2])
        self.network_ = ema.eval()
        self.loss_history_ = np.asarray(history)
        val_history = [(c[0], float(c[1].mean())) for c in checkpoints]
        self.val_history_ = np.asarray(val_history, dtype=float).reshape(-1, 2)  # (evaluations, [step, loss])
        self.best_step_ = checkpoints[best][0] if best is not None else tcfg.n_iters
        logger.info(
            "%s fitted: final loss %.4f; weights of step %d/%d (held-out loss %s)",
            type(self).__name__,
            np.mean(history[-50:]),
            self.best_step_,
            tcfg.n_iters,
            f"{val_history[best][1]:.4f}" if best is not None else "not used",
        )
        return self

    def _split_validation(
        self, tp: torch.Tensor, tq: torch.Tensor, tcfg: TrainConfig
    ) -> tuple[torch.Tensor, torch.Tensor, Callable[[TimeConditionedMLP], np.ndarray] | None]:
        """Hold out ``val_fraction`` of each sample; return the training parts and the held-out loss.

        The held-out loss is the training objective on fixed pairs, times, intervals and noise (one seeded
        draw, reused at every evaluation), with the interval cap at its final value, so evaluations differ only
        by the network. It returns the loss of each of up to ``_VAL_CHUNKS`` groups of pairs, (G,); ``fit`` keeps
        the EMA weights that :func:`select_checkpoint` picks.
        """
        n_p, n_q = int(tp.shape[0] * tcfg.val_fraction), int(tq.shape[0] * tcfg.val_fraction)
        if min(n_p, n_q) < 2:
            return tp, tq, None
        # on the host, so that the split is the same on any device
        perm = torch.Generator().manual_seed(tcfg.seed + 7919)
        ip, iq = torch.randperm(tp.shape[0], generator=perm), torch.randperm(tq.shape[0], generator=perm)
        ip, iq = ip.to(tp.device), iq.to(tq.device)
        n = min(n_p, n_q, _VAL_PAIRS)  # held-out pairs scored (the rest of the held-out rows stay unused)
        vp, vq = tp[ip[:n]], tq[iq[:n]]  # (n, d) each

        groups = min(_VAL_CHUNKS, n)

        def val_loss(net: TimeConditionedMLP) -> np.ndarray:
            gen = torch.Generator(device=vp.device).manual_seed(tcfg.seed + 104729)  # the same draw each time
            with torch.no_grad():
                return np.array(
                    [
                        float(self._loss(net, q, p, gen, tcfg.n_iters))
                        for q, p in zip(torch.chunk(vq, groups), torch.chunk(vp, groups))
                    ]
                )  # (G,)

        return tp[ip[n_p:]], tq[iq[n_q:]], val_loss

    def _path_batch(
        self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, gen: torch.Generator
    ) -> PathSample:
        noise = torch.randn(x0.shape, generator=gen, device=gen.device)
        return sample_path(self._path_cfg(), x0, x1, t, noise)

    def ratio(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Estimated density ratio p(x)/q(x) = exp(log_ratio(X)). (n,)."""
        return np.exp(self.log_ratio(X, **kwargs))

    def log_ratio(self, X: Any, **kwargs: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ISADRE(PathDREBase):
    """Interval-annealed Secant Alignment density-ratio estimator (arXiv 2509.04852).

    Attributes (after ``fit``): ``network_`` (the secant network u(x, l, t), EMA weights), ``train_config_``
    (``config.train`` with its data-scaled fields resolved, :func:`resolve_train`), ``loss_history_``,
    ``n_features_in_``, ``feature_names_in_`` (DataFrame columns of ``X_p``; queries are reordered to
    them), ``shift_``/``scale_`` (shared standardisation), ``last_nfe_`` (after ``log_ratio``).

    Example:
        >>> est = ISADRE(ISADREConfig(train=TrainConfig(n_iters=10))).fit(X_p, X_q)  # doctest: +SKIP
        >>> est.log_ratio(X, steps=1)  # doctest: +SKIP
    """

    _secant = True

    def __init__(self, config: ISADREConfig | None = None) -> None:
        super().__init__(config)

    @property
    def cfg(self) -> ISADREConfig:
        """The config in use (defaults when None)."""
        return self.config if self.config is not None else ISADREConfig()

    def _loss(
        self, net: TimeConditionedMLP, x0: torch.Tensor, x1: torch.Tensor, gen: torch.Generator, step: int
    ) -> torch.Tensor:
        cfg = self.cfg
        n = x0.shape[0]
        t = self._sample_t(n, gen)
        cap = interval_cap(step, cfg.train.n_iters, cfg.anneal, cfg.anneal_fraction, cfg.anneal_start)
        aligned = torch.rand(n, generator=gen, device=gen.device) < cfg.aligned_ratio
        full = (
            torch.rand(n, generator=gen, device=gen.device) < cfg.full_ratio if cfg.full_ratio > 0 else None
        )
        unif = torch.rand(n, generator=gen, device=gen.device)
        l, gap = sample_intervals(t, unif, cap, aligned, cfg.path.t_eps, full)
        batch = self._path_batch(x0, x1, t, gen)
        # partial d/dt at fixed x: tangent (0, 1); total derivative along the path: (dx_t/dt, 1).
        dx = batch.velocity if cfg.derivative == "total" else torch.zeros_like(batch.xt)
        with fwAD.dual_level():  # forward-mode JVP: one pass gives u and its directional derivative
            xt = fwAD.make_dual(batch.xt, dx) if cfg.derivative == "total" else batch.xt
            u, du_dt = fwAD.unpack_dual(net(xt, fwAD.make_dual(t, torch.ones_like(t)), l))
        if du_dt is None:  # pragma: no cover - the network always depends on t
            raise RuntimeError("forward-mode derivative of the secant network is missing")
        weight = target_weight(batch.target_var, cfg.train.weighting, batch.marginal_var)
        return secant_alignment_loss(u, du_dt, gap, batch.target, weight)

    @torch.no_grad()
    def secant(self, X: Any, l: float, t: float) -> np.ndarray:
        """The learned secant u(x, l, t) at fixed (l, t), (n,)."""
        check_fitted(self, "network_")
        x = self._transform(check_query(self, X))
        return self._secant_t(x, l, t).cpu().numpy().astype(np.float64)

    def _secant_t(self, x: torch.Tensor, l: float, t: float) -> torch.Tensor:
        outs = []
        for chunk in torch.split(x, _CHUNK):
            n = chunk.shape[0]
            tt, ll = torch.full((n,), t, device=chunk.device), torch.full((n,), l, device=chunk.device)
            outs.append(self.network_(chunk, tt, ll))
        return torch.cat(outs)

    @torch.no_grad()
    def log_ratio(self, X: Any, steps: int | None = None) -> np.ndarray:  # type: ignore[override]
        """log p(x)/q(x) by the secant sum over a warped grid of ``steps`` intervals (default config.n_steps).

        NFE = steps; the count actually made is stored in ``last_nfe_``.
        """
        check_fitted(self, "network_")
        n_steps = self.cfg.n_steps if steps is None else int(steps)
        if n_steps < 1:
            raise ValueError(f"steps must be >= 1, got {n_steps}")
        x = self._transform(check_query(self, X))
        path = self.cfg.path
        grid = warped_grid(n_steps, self.cfg.grid_a, self.cfg.grid_b, path.t_eps, path.query_end)
        calls = self.network_.n_calls
        secants = torch.stack(
            [self._secant_t(x, float(grid[i]), float(grid[i + 1])).double().cpu() for i in range(n_steps)]
        )  # (N, n)
        self.last_nfe_ = (self.network_.n_calls - calls) // max(1, math.ceil(x.shape[0] / _CHUNK))
        return secant_sum(grid, secants).numpy()
