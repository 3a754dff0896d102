"""Evaluation metrics used across mercato, in NumPy, checked against scikit-learn in the tests.

All functions take 1-D arrays and return Python floats. Degenerate inputs (one class only for AUC,
empty arrays) raise ``ValueError`` rather than returning NaN silently.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

ArrayLike = npt.ArrayLike

__all__ = ["auc", "ece", "gauc", "logloss", "mae", "ndcg_at_k", "pcoc", "recall_at_k", "rmse"]


def _as_1d(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    return t, p


def _check_binary(t: np.ndarray, what: str) -> None:
    """Refuse a ``y_true`` that is not 0/1: AUC of fractional labels would silently threshold them."""
    bad = t[(t != 0) & (t != 1)]
    if bad.size:
        kind = "fractional" if np.all((bad > 0) & (bad < 1)) else "non-binary"
        raise ValueError(
            f"{what} needs a binary y_true (0/1) but got {kind} values such as {bad[0]:g}; "
            "binarise fractional labels first (e.g. y > 0 or y >= 0.5)"
        )


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks, so tied scores count 1/2).

    ``y_true`` must hold 0/1 values only; fractional labels raise ``ValueError`` (binarise them first).
    """
    t, s = _pair(y_true, y_score)
    _check_binary(t, "AUC")
    pos = t > 0.5
    n_pos = int(pos.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC is undefined when y_true has only one class")
    ranks = rankdata(s)  # average ranks for ties
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def gauc(y_true: ArrayLike, y_score: ArrayLike, *, groups: ArrayLike) -> float:
    """Group AUC: per-group (per-user) AUC weighted by the group's sample count, over groups with both classes.

    ``groups`` is keyword-only, so a call in the old ``gauc(user_ids, y_true, y_score)`` order fails instead
    of returning a wrong number. ``y_true`` must be 0/1, as for :func:`auc`.
    """
    t, s = _pair(y_true, y_score)
    _check_binary(t, "GAUC")
    users = np.asarray(groups).reshape(-1)
    if users.shape != t.shape:
        raise ValueError(f"groups has {users.size} values but y_true has {t.size}")
    order = np.argsort(users, kind="stable")
    users_sorted = users[order]
    boundaries = np.flatnonzero(users_sorted[1:] != users_sorted[:-1]) + 1
    total, weight = 0.0, 0
    for idx in np.split(order, boundaries):
        yt = t[idx]
        n_pos = int((yt > 0.5).sum())
        if n_pos == 0 or n_pos == yt.size:
            continue
        total += auc(yt, s[idx]) * yt.size
        weight += yt.size
    if weight == 0:
        raise ValueError("GAUC is undefined: no user has both positive and negative samples")
    return total / weight


def logloss(y_true: ArrayLike, y_prob: ArrayLike, eps: float | None = None) -> float:
    """Mean binary cross-entropy; probabilities are clipped to [eps, 1 - eps] (float64 machine eps)."""
    t, p = _pair(y_true, y_prob)
    eps = float(np.finfo(np.float64).eps) if eps is None else eps
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(t * np.log(p) + (1 - t) * np.log1p(-p)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def ece(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins on [0, 1], weighted by bin size."""
    t, p = _pair(y_true, y_prob)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - t[mask].mean())
    return float(total / t.size)


def pcoc(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Predicted-over-observed ratio: sum of predicted probabilities / number of positives (1 is calibrated)."""
    t, p = _pair(y_true, y_prob)
    observed = t.sum()
    if observed == 0:
        raise ValueError("PCOC is undefined when there are no positives")
    return float(p.sum() / observed)


def _topk_relevance(relevance: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (Q, k)
    return np.take_along_axis(relevance, order, axis=1)


def recall_at_k(relevance: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Mean over queries of (relevant items in the top k) / (relevant items); queries with none are skipped.

    Args:
        relevance: (Q, N) binary relevance of N candidates per query.
        scores: (Q, N) model scores; higher ranks first (ties keep candidate order).
    """
    rel = np.atleast_2d(np.asarray(relevance, dtype=np.float64))
    sc = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if rel.shape != sc.shape:
        raise ValueError(f"relevance shape {rel.shape} != scores shape {sc.shape}")
    n_rel = (rel > 0).sum(axis=1)
    keep = n_rel > 0
    if not keep.any():
        raise ValueError("Recall@K is undefined: no query has a relevant item")
    hits = (_topk_relevance(rel, sc, k) > 0).sum(axis=1)
    return float(np.mean(hits[keep] / n_rel[keep]))


def ndcg_at_k(relevance: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Mean NDCG@k with gains equal to the (graded) relevance and log2 discounts.

    Args:
        relevance: (Q, N) non-negative relevance of N candidates per query.
        scores: (Q, N) model scores.
    """
    rel = np.atleast_2d(np.asarray(relevance, dtype=np.float64))
    sc = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if rel.shape != sc.shape:
        raise ValueError(f"relevance shape {rel.shape} != scores shape {sc.shape}")
    k = min(k, rel.shape[1])
    discounts = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    dcg = (_topk_relevance(rel, sc, k) * discounts).sum(axis=1)
    ideal = (-np.sort(-rel, axis=1)[:, :k] * discounts).sum(axis=1)
    keep = ideal > 0
    if not keep.any():
        raise ValueError("NDCG@K is undefined: no query has a relevant item")
    return float(np.mean(dcg[keep] / ideal[keep]))
