"""Per-head evaluation for :class:`~mercato.ctr.trainer.CTRTrainer`, and the resume checks.

A metric is a function ``(y_true, y_prob, groups, weight) -> float`` on NumPy arrays; :data:`METRICS` holds
the defaults from :mod:`mercato.core.metrics` (AUC, GAUC per user, logloss, PCOC). :func:`score_heads`
computes the chosen metrics for each (head, label) pair and returns one flat dict: the primary head's metrics
under their plain names (``"auc"``), every other head's under ``"<head>/<metric>"``. A metric that is
undefined on a split (one class only, fractional labels for AUC) is reported as NaN with a warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mercato.core.metrics import auc, gauc, logloss, pcoc

__all__ = [
    "METRICS",
    "MetricFn",
    "better",
    "config_differences",
    "metric_key",
    "score_heads",
]

log = logging.getLogger(__name__)

MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"], float]

#: The default metrics: name -> ``fn(y_true, y_prob, groups, weight)`` (weights unused: unweighted metrics).
METRICS: dict[str, MetricFn] = {
    "auc": lambda y, p, g, w: auc(y, p),
    "gauc": lambda y, p, g, w: gauc(y, p, groups=g),
    "logloss": lambda y, p, g, w: logloss(y, p),
    "pcoc": lambda y, p, g, w: pcoc(y, p),
}
#: Metrics where lower is better (PCOC: closer to 1 is better); every other metric: higher is better.
LOWER_IS_BETTER = {"logloss"}
CLOSER_TO_ONE = {"pcoc"}


def metric_key(head: str, metric: str, primary: str) -> str:
    """``metric`` for the primary head, ``head/metric`` for the others."""
    return metric if head == primary else f"{head}/{metric}"


def better(monitor: str, new: float, old: float | None) -> bool:
    """Whether ``new`` improves on ``old`` for the metric key ``monitor`` (``old`` None: anything finite)."""
    if old is None or math.isnan(old):
        return not math.isnan(new)
    base = monitor.rsplit("/", 1)[-1]
    if base in LOWER_IS_BETTER:
        return new < old
    if base in CLOSER_TO_ONE:
        return abs(new - 1.0) < abs(old - 1.0)
    return new > old


def _or_nan(metric: Callable[[], float], name: str) -> float:
    """``metric()``, or NaN (with a warning) when it is undefined, e.g. a split with one class only."""
    try:
        return float(metric())
    except ValueError as err:
        log.warning("%s is undefined on this split (%s); reporting NaN", name, err)
        return float("nan")


def score_heads(
    probs: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    head_labels: Mapping[str, str],
    groups: np.ndarray,
    metrics: Mapping[str, MetricFn],
    primary: str,
    weight: np.ndarray | None = None,
    heads: Sequence[str] = (),
) -> dict[str, float]:
    """Every metric of every evaluated head against its label, as one flat dict.

    Args:
        probs: head -> predicted probabilities ``(N,)``.
        labels: label name -> targets ``(N,)``.
        head_labels: head -> the label it is scored against.
        groups: ``(N,)`` group ids for GAUC (users).
        metrics: metric name -> function.
        primary: the primary head (its keys carry no prefix).
        weight: optional per-sample weights handed to the metric functions.
        heads: heads to evaluate (empty: every head of ``head_labels``); unknown names raise ``ValueError``.
    """
    chosen = list(heads) or list(head_labels)
    unknown = [h for h in chosen if h not in head_labels or h not in probs]
    if unknown:
        raise ValueError(
            f"eval_heads {unknown} are not scored heads of the model; heads: {list(head_labels)}"
        )
    out: dict[str, float] = {}
    for head in chosen:
        y, p = labels[head_labels[head]], probs[head]
        for name, fn in metrics.items():
            key = metric_key(head, name, primary)
            out[key] = _or_nan(lambda: fn(y, p, groups, weight), key)  # noqa: B023 - called at once
    return out


#: TrainerConfig keys that may change on resume: they do not change which updates are made.
RESUME_FREE_KEYS = frozenset(
    {"epochs", "device", "progress", "num_threads", "eval_batch_size", "checkpoint_every_steps"}
)


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], ignore: frozenset[str] = frozenset()
) -> list[str]:
    """Keys whose values differ between two flat config dicts (keys in ``ignore`` skipped), as
    ``"key: saved -> current"`` lines."""
    keys = sorted((set(saved) | set(current)) - ignore)
    diffs = []
    for k in keys:
        a, b = saved.get(k, "<absent>"), current.get(k, "<absent>")
        if _normal(a) != _normal(b):
            diffs.append(f"{k}: {a!r} -> {b!r}")
    return diffs


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value
