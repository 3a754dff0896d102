"""Classical rating-prediction baselines: global mean, user+item bias, matrix factorisation (MF).

* global mean: y_hat = mu.
* user+item bias (Koren, 2010, "Factor in the neighbors", baseline predictor): y_hat = mu + b_u + b_i, fitted by
  alternating regularised means b_i = sum(r - mu - b_u) / (lambda + n_i), b_u likewise.
* MF (Koren, Bell & Volinsky, 2009): y_hat = mu + b_u + b_i + p_u . q_i, squared error + L2, full-batch Adam
  in torch (the paper's MF baseline).

All predictions are clipped to the rating range; unseen users or items fall back to zero bias / factors.

Examples:
    >>> import pandas as pd
    >>> tr = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rating": [4.0, 2.0, 5.0]})
    >>> GlobalMean().fit(tr).predict([1], [2]).tolist()
    [3.6666666666666665]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

__all__ = ["BiasBaseline", "GlobalMean", "MatrixFactorization"]


def _arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        df["user_id"].to_numpy(np.int64),
        df["item_id"].to_numpy(np.int64),
        df["rating"].to_numpy(np.float64),
    )


class GlobalMean:
    """Predict the mean training rating."""

    def __init__(self, lo: float = 1.0, hi: float = 5.0) -> None:
        self.lo, self.hi = lo, hi
        self.mu_ = 0.0

    def fit(self, ratings: pd.DataFrame) -> GlobalMean:
        """Fit on a frame with user_id, item_id, rating."""
        self.mu_ = float(ratings["rating"].mean())
        return self

    def predict(self, users: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """(N,) predictions."""
        return np.full(len(users), np.clip(self.mu_, self.lo, self.hi))


class BiasBaseline:
    """y_hat = mu + b_u + b_i with shrinkage ``reg`` (lambda), fitted by ``iters`` alternating updates."""

    def __init__(self, reg: float = 5.0, iters: int = 10, lo: float = 1.0, hi: float = 5.0) -> None:
        self.reg, self.iters, self.lo, self.hi = reg, iters, lo, hi
        self.mu_ = 0.0
        self.bu_: dict[int, float] = {}
        self.bi_: dict[int, float] = {}

    def fit(self, ratings: pd.DataFrame) -> BiasBaseline:
        """Fit on a frame with user_id, item_id, rating."""
        u, i, r = _arrays(ratings)
        self.mu_ = float(r.mean())
        uu, u_idx = np.unique(u, return_inverse=True)
        ii, i_idx = np.unique(i, return_inverse=True)
        bu, bi = np.zeros(len(uu)), np.zeros(len(ii))
        nu = np.bincount(u_idx, minlength=len(uu))
        ni = np.bincount(i_idx, minlength=len(ii))
        for _ in range(self.iters):
            bi = np.bincount(i_idx, weights=r - self.mu_ - bu[u_idx], minlength=len(ii)) / (self.reg + ni)
            bu = np.bincount(u_idx, weights=r - self.mu_ - bi[i_idx], minlength=len(uu)) / (self.reg + nu)
        self.bu_ = dict(zip(uu.tolist(), bu.tolist()))
        self.bi_ = dict(zip(ii.tolist(), bi.tolist()))
        return self

    def predict(self, users: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """(N,) predictions."""
        pred = [
            self.mu_ + self.bu_.get(int(u), 0.0) + self.bi_.get(int(i), 0.0) for u, i in zip(users, items)
        ]
        return np.clip(np.asarray(pred, dtype=np.float64), self.lo, self.hi)


class MatrixFactorization:
    """Biased MF y_hat = mu + b_u + b_i + p_u . q_i trained with full-batch Adam on squared error + L2."""

    def __init__(
        self,
        dim: int = 32,
        epochs: int = 100,
        lr: float = 0.02,
        reg: float = 0.1,
        seed: int = 0,
        lo: float = 1.0,
        hi: float = 5.0,
    ) -> None:
        self.dim, self.epochs, self.lr, self.reg, self.seed, self.lo, self.hi = (
            dim,
            epochs,
            lr,
            reg,
            seed,
            lo,
            hi,
        )
        self.mu_ = 0.0
        self.user_index_: dict[int, int] = {}
        self.item_index_: dict[int, int] = {}
        self.params_: dict[str, torch.Tensor] = {}
        self.loss_history_: list[float] = []

    def fit(self, ratings: pd.DataFrame) -> MatrixFactorization:
        """Fit on a frame with user_id, item_id, rating."""
        u, i, r = _arrays(ratings)
        uu, u_idx = np.unique(u, return_inverse=True)
        ii, i_idx = np.unique(i, return_inverse=True)
        self.user_index_ = {int(x): k for k, x in enumerate(uu)}
        self.item_index_ = {int(x): k for k, x in enumerate(ii)}
        self.mu_ = float(r.mean())
        gen = torch.Generator().manual_seed(self.seed)
        P = (0.1 * torch.randn(len(uu), self.dim, generator=gen)).requires_grad_()  # (U, D)
        Q = (0.1 * torch.randn(len(ii), self.dim, generator=gen)).requires_grad_()  # (I, D)
        bu = torch.zeros(len(uu), requires_grad=True)  # (U,)
        bi = torch.zeros(len(ii), requires_grad=True)  # (I,)
        ut, it = torch.as_tensor(u_idx), torch.as_tensor(i_idx)
        rt = torch.tensor(r, dtype=torch.float32)
        params = [P, Q, bu, bi]
        # Plain Adam (Kingma & Ba, 2015) written out: torch.optim's first step costs seconds of lazy imports.
        m1 = [torch.zeros_like(p) for p in params]
        m2 = [torch.zeros_like(p) for p in params]
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.loss_history_ = []
        for t in range(1, self.epochs + 1):
            pred = self.mu_ + bu[ut] + bi[it] + (P[ut] * Q[it]).sum(dim=1)  # (N,)
            mse = ((pred - rt) ** 2).mean()
            l2 = (P[ut].pow(2).sum(1) + Q[it].pow(2).sum(1) + bu[ut] ** 2 + bi[it] ** 2).mean()
            grads = torch.autograd.grad(mse + self.reg * l2, params)
            with torch.no_grad():
                for p, g, a, b in zip(params, grads, m1, m2):
                    a.mul_(beta1).add_(g, alpha=1 - beta1)
                    b.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    step = self.lr / (1 - beta1**t)
                    p.sub_(step * a / ((b / (1 - beta2**t)).sqrt() + eps))
            self.loss_history_.append(float(mse.detach()))
        self.params_ = {"P": P.detach(), "Q": Q.detach(), "bu": bu.detach(), "bi": bi.detach()}
        return self

    def predict(self, users: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """(N,) predictions; unseen users/items use zero bias and zero factors."""
        p = self.params_
        out = np.empty(len(users), dtype=np.float64)
        for k, (u, i) in enumerate(zip(users, items)):
            uk, ik = self.user_index_.get(int(u)), self.item_index_.get(int(i))
            v = self.mu_
            if uk is not None:
                v += float(p["bu"][uk])
            if ik is not None:
                v += float(p["bi"][ik])
            if uk is not None and ik is not None:
                v += float(p["P"][uk] @ p["Q"][ik])
            out[k] = v
        return np.clip(out, self.lo, self.hi)
