"""Tiny synthetic CTR frames for tests/ctr (a uniquely named module: `conftest` names clash across folders)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mercato.data import CTRSplits

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` impressions with a learnable signal (items divisible by 3 are clicked, plus 20% noise)."""
    rng = np.random.default_rng(seed)
    item = rng.integers(0, 12, n)
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 8, n),
            "item_id": item,
            "gender": rng.choice(["F", "M"], n),
            "year": rng.integers(1980, 2000, n).astype(float),
            "genres": ["|".join(rng.choice(GENRES, rng.integers(0, 3), replace=False)) for _ in range(n)],
            "label": ((item % 3 == 0) ^ (rng.random(n) < 0.2)).astype(np.float32),
            "timestamp": rng.integers(0, 1000, n),
        }
    )


def make_splits(n_train: int = 64, n_eval: int = 32) -> CTRSplits:
    """A :class:`CTRSplits` of tiny synthetic frames."""
    return CTRSplits(
        train=make_frame(n_train, 0),
        valid=make_frame(n_eval, 1),
        test=make_frame(n_eval, 2),
        categorical=["user_id", "item_id", "gender"],
        numeric=["year"],
        multihot=["genres"],
        name="tiny",
    )
