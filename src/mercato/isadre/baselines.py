"""Baselines with the ISA-DRE API: classifier DRE and DRE-infinity (time-score matching + integration).

* :class:`ClassifierDRE`: a probabilistic classifier of p vs q; log r(x) = logit P(p | x) + log(n_q / n_p).
  Uses scikit-learn's LogisticRegression or a two-hidden-layer torch MLP (minibatch Adam, early stopping on
  a held-out 10 %). NFE = 1.
* :class:`TimeScoreDRE`: DRE-infinity (Choi et al., AISTATS 2022) with the conditional time-score matching
  objective (CTSM, digest A2); log r(x) = int_eps^{1-eps} tau(x, t) dt by the trapezoid rule on K intervals
  (NFE = K + 1) or by scipy's RK45 ``solve_ivp`` (NFE = the solver's function evaluations).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from scipy.integrate import solve_ivp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from torch import nn

from mercato.core.device import resolve_device
from mercato.isadre.config import ClassifierDREConfig, TimeScoreDREConfig, resolve_classifier
from mercato.isadre.estimator import (
    PathDREBase,
    check_fitted,
    check_pair,
    check_query,
    record_feature_names,
    warn_narrow,
)
from mercato.isadre.losses import target_weight, time_score_matching_loss
from mercato.isadre.networks import TimeConditionedMLP

__all__ = ["ClassifierDRE", "TimeScoreDRE"]

logger = logging.getLogger(__name__)


def _add_squares(X: np.ndarray) -> np.ndarray:
    """[x, x^2] features, (n, 2d)."""
    return np.concatenate([X, X**2], axis=1)


def _mlp(dim: int, hidden: int) -> nn.Module:
    """Linear(d, H) - SiLU - Linear(H, H) - SiLU - Linear(H, 1): the classifier's logit network."""
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1)
    )


def _fit_mlp_classifier(X: np.ndarray, y: np.ndarray, cfg: ClassifierDREConfig) -> nn.Module:
    """Minibatch Adam on the logistic loss (weight decay ``alpha``) with early stopping on a held-out 10 %.

    Returns the network with the weights of the epoch of lowest validation loss. X is standardised already;
    ``cfg`` is resolved (:func:`resolve_classifier`: ``hidden`` and ``batch_size`` set).
    """
    if cfg.hidden is None or cfg.batch_size is None:
        raise ValueError("_fit_mlp_classifier needs a resolved config (hidden and batch_size set)")
    dev = resolve_device(cfg.device)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    perm = torch.randperm(len(X), generator=gen, device=dev)
    n_val = max(1, len(X) // 10)
    xt = torch.as_tensor(X, dtype=torch.float32).to(dev)
    yt = torch.as_tensor(y, dtype=torch.float32).to(dev)
    xv, yv, xtr, ytr = xt[perm[:n_val]], yt[perm[:n_val]], xt[perm[n_val:]], yt[perm[n_val:]]
    hidden, batch = cfg.hidden, cfg.batch_size
    net = _mlp(X.shape[1], hidden).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.alpha)
    bce = nn.functional.binary_cross_entropy_with_logits
    best, best_state, stale = float("inf"), copy.deepcopy(net.state_dict()), 0
    for epoch in range(cfg.max_iter):
        order = torch.randperm(len(xtr), generator=gen, device=dev)
        net.train()
        for idx in torch.split(order, batch):
            loss = bce(net(xtr[idx])[:, 0], ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = float(bce(net(xv)[:, 0], yv))
        if val < best - 1e-4:
            best, best_state, stale = val, copy.deepcopy(net.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                logger.info("ClassifierDRE: early stop at epoch %d (val loss %.4f)", epoch, best)
                break
    net.load_state_dict(best_state)
    return net.eval()


class ClassifierDRE(BaseEstimator):
    """Classifier-based density ratio: train p (label 1) vs q (label 0); log r = logit + log(n_q / n_p).

    After ``fit``, ``resolved_config_`` is the config with its data-scaled fields filled
    (:func:`mercato.isadre.config.resolve_classifier`)."""

    def __init__(self, config: ClassifierDREConfig | None = None) -> None:
        self.config = config

    @property
    def cfg(self) -> ClassifierDREConfig:
        """The config in use (defaults when None)."""
        return self.config if self.config is not None else ClassifierDREConfig()

    def fit(self, X_p: Any, X_q: Any) -> ClassifierDRE:
        """Fit the classifier on p-samples (label 1) and q-samples (label 0). Returns self."""
        X_q = record_feature_names(self, X_p, X_q)
        Xp, Xq = check_pair(X_p, X_q)
        X = np.concatenate([Xp, Xq])
        # data-scaled defaults (width from d, minibatch from n_p + n_q) resolved for this fit
        cfg = self.resolved_config_ = resolve_classifier(self.cfg, Xp.shape[1], len(X))
        y = np.concatenate([np.ones(len(Xp)), np.zeros(len(Xq))])
        if cfg.model == "logistic":
            steps: list[Any] = [FunctionTransformer(_add_squares)] if cfg.quadratic else []
            clf = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter)
            self.classifier_: Any = make_pipeline(*steps, StandardScaler(), clf).fit(X, y)
        elif cfg.model == "mlp":
            warn_narrow(cfg.hidden or 0, X.shape[1], "hidden")
            scaler = StandardScaler().fit(X)
            self.classifier_ = _TorchLogit(scaler, _fit_mlp_classifier(scaler.transform(X), y, cfg))
        else:
            raise ValueError(f"unknown model {cfg.model!r}; valid: logistic, mlp")
        self.log_prior_ = float(np.log(len(Xq) / len(Xp)))
        self.n_features_in_ = Xp.shape[1]
        return self

    def log_ratio(self, X: Any, steps: int | None = None) -> np.ndarray:
        """log p(x)/q(x) from the classifier's logit (``steps`` is accepted for API symmetry; NFE = 1)."""
        check_fitted(self, "classifier_")
        x = check_query(self, X)
        self.last_nfe_ = 1
        logit = np.asarray(self.classifier_.decision_function(x), dtype=np.float64)
        return logit + self.log_prior_

    def ratio(self, X: Any) -> np.ndarray:
        """Estimated p(x)/q(x), (n,)."""
        return np.exp(self.log_ratio(X))


class _TorchLogit:
    """A fitted standardiser plus logit network with sklearn's ``decision_function`` (logit of P(p | x))."""

    def __init__(self, scaler: StandardScaler, net: nn.Module) -> None:
        self.scaler, self.net = scaler, net

    @torch.no_grad()
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logits, (n,)."""
        dev = next(self.net.parameters()).device
        x = torch.as_tensor(self.scaler.transform(X), dtype=torch.float32).to(dev)
        return torch.cat([self.net(c)[:, 0] for c in torch.split(x, 65536)]).double().cpu().numpy()


class TimeScoreDRE(PathDREBase):
    """DRE-infinity: learn the tangent tau(x, t) = d/dt log p_t(x), integrate it over t at fixed x."""

    _secant = False

    def __init__(self, config: TimeScoreDREConfig | None = None) -> None:
        super().__init__(config)

    @property
    def cfg(self) -> TimeScoreDREConfig:
        """The config in use (defaults when None)."""
        return self.config if self.config is not None else TimeScoreDREConfig()

    def _loss(
        self, net: TimeConditionedMLP, x0: torch.Tensor, x1: torch.Tensor, gen: torch.Generator, step: int
    ) -> torch.Tensor:
        t = self._sample_t(x0.shape[0], gen)
        batch = self._path_batch(x0, x1, t, gen)
        s = net(batch.xt, t)
        return time_score_matching_loss(
            s, batch.target, target_weight(batch.target_var, self.cfg.train.weighting, batch.marginal_var)
        )

    @torch.no_grad()
    def time_score(self, X: Any, t: float) -> np.ndarray:
        """The learned tangent tau(x, t), (n,)."""
        check_fitted(self, "network_")
        x = self._transform(check_query(self, X))
        return self._tau(x, t).numpy().astype(np.float64)

    def _tau(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self.network_(x, torch.full((x.shape[0],), float(t), device=x.device)).double().cpu()

    @torch.no_grad()
    def log_ratio(  # type: ignore[override]
        self, X: Any, steps: int | None = None, integrator: str | None = None
    ) -> np.ndarray:
        """log p(x)/q(x) = int_eps^{end} tau(x, t) dt, end = 1 - eps or ``path.t_end`` (DRE-infinity identity, A2).

        Args:
            X: query points (n, d).
            steps: trapezoid intervals K (default config.n_quad_steps); ignored by the ODE integrator.
            integrator: 'quadrature' or 'ode' (default config.integrator).
        """
        check_fitted(self, "network_")
        cfg = self.cfg
        x = self._transform(check_query(self, X))
        eps, end = cfg.path.t_eps, cfg.path.query_end
        method = integrator or cfg.integrator
        if method == "quadrature":
            k = cfg.n_quad_steps if steps is None else int(steps)
            if k < 1:
                raise ValueError(f"steps must be >= 1, got {k}")
            grid = np.linspace(eps, end, k + 1)
            values = torch.stack([self._tau(x, float(t)) for t in grid]).numpy()  # (K+1, n)
            self.last_nfe_ = k + 1
            return np.trapezoid(values, grid, axis=0)
        if method == "ode":

            def rhs(t: float, y: np.ndarray) -> np.ndarray:
                return self._tau(x, t).numpy()

            sol = solve_ivp(
                rhs, (eps, end), np.zeros(x.shape[0]), method="RK45", rtol=cfg.rtol, atol=cfg.atol
            )
            if not sol.success:
                raise RuntimeError(f"TimeScoreDRE: ODE integration failed: {sol.message}")
            self.last_nfe_ = int(sol.nfev)
            return np.asarray(sol.y[:, -1], dtype=np.float64)
        raise ValueError(f"unknown integrator {method!r}; valid: quadrature, ode")
