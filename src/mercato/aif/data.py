"""MovieLens CTR rows with each user's behaviour sequence, and a synthetic long-sequence generator."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from mercato.data import CTRSplits
from mercato.data.movielens import movielens_ctr

__all__ = ["long_sequences", "movielens_history_splits"]


def add_history(df: pd.DataFrame, max_len: int) -> pd.Series:
    """Per row, the ``max_len`` items the user rated before it, most recent first, ``|``-joined."""
    order = df.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    out = pd.Series("", index=df.index, dtype=object)
    users, items = order["user_id"].to_numpy(), order["item_id"].astype(str).to_numpy()
    idx = order.index.to_numpy()
    start = 0
    vals: list[str] = [""] * len(order)
    for i in range(len(order)):
        if i and users[i] != users[i - 1]:
            start = i
        lo = max(start, i - max_len)
        vals[i] = "|".join(items[lo:i][::-1])
    out.loc[idx] = vals
    return out


def movielens_history_splits(variant: Literal["100k", "1m"] = "1m", max_len: int = 20) -> CTRSplits:
    """:func:`mercato.data.movielens.movielens_ctr` plus a multi-hot ``history`` field (earlier items only)."""
    base = movielens_ctr(variant)
    frames = [base.train.assign(_s=0), base.valid.assign(_s=1), base.test.assign(_s=2)]
    allrows = pd.concat(frames, ignore_index=True)
    allrows["history"] = add_history(allrows, max_len)
    parts = [allrows[allrows["_s"] == s].drop(columns="_s").reset_index(drop=True) for s in range(3)]
    return CTRSplits(
        parts[0],
        parts[1],
        parts[2],
        categorical=list(base.categorical),
        numeric=list(base.numeric),
        multihot=[*base.multihot, "history"],
        label=base.label,
        user=base.user,
        name=f"{base.name}+history",
    )


def long_sequences(
    num_users: int, length: int = 1000, dim: int = 16, num_interests: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic long behaviour sequences: each user mixes ``num_interests`` interest directions.

    Returns ``seq (U, length, dim)`` float32 and ``interest (U, num_interests, dim)``, the directions each
    user's events are drawn around (unit vectors plus noise 0.3).
    """
    if length < 1 or num_users < 1:
        raise ValueError(f"num_users and length must be >= 1, got {num_users}, {length}")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_users, num_interests, dim))
    centres /= np.linalg.norm(centres, axis=-1, keepdims=True)
    pick = rng.integers(0, num_interests, (num_users, length))
    seq = centres[np.arange(num_users)[:, None], pick] + 0.3 * rng.standard_normal((num_users, length, dim))
    return seq.astype(np.float32), centres.astype(np.float32)
