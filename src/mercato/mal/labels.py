"""Label views of MAL: binarised credits and the CAT (Cartesian product) class.

``y_cat = 1*y_last + 2*y_first + 4*y_linear + 8*y_mta`` with each y binarised (credit > 0): one of 16
classes, the enriched supervision of the CAT tower (MAL §CAT; PyMAL ``model/NATAL.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["CAT_VIEWS", "binarise", "cat_decode", "cat_encode"]

CAT_VIEWS: tuple[str, ...] = ("last", "first", "linear", "mta")  # bit k of y_cat is CAT_VIEWS[k]


def binarise(credit: np.ndarray) -> np.ndarray:
    """A credit in [0, 1] as a binary label ``1[credit > 0]`` (PyMAL: ``df[col] > 0``)."""
    return (np.asarray(credit) > 0).astype(np.int64)


def cat_encode(labels: Mapping[str, np.ndarray], views: Sequence[str] = CAT_VIEWS) -> np.ndarray:
    """``sum_k 2^k 1[labels[views[k]] > 0]``: the Cartesian-product class in [0, 2^K)."""
    missing = [v for v in views if v not in labels]
    if missing:
        raise KeyError(f"cat_encode: missing label view(s) {missing}; have {sorted(labels)}")
    out = np.zeros(len(np.asarray(labels[views[0]])), dtype=np.int64)
    for k, v in enumerate(views):
        out += binarise(labels[v]) << k
    return out


def cat_decode(y_cat: np.ndarray, views: Sequence[str] = CAT_VIEWS) -> dict[str, np.ndarray]:
    """Inverse of ``cat_encode``: the binary label of each view."""
    y = np.asarray(y_cat, dtype=np.int64)
    if ((y < 0) | (y >= 1 << len(views))).any():
        raise ValueError(f"cat_decode: classes must lie in [0, {1 << len(views)})")
    return {v: (y >> k) & 1 for k, v in enumerate(views)}
