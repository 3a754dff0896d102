"""Tiny synthetic CTR data shared by the tests in tests/ctr (built in memory, < 100 rows)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch

import mercato.core.metrics  # noqa: F401  (heavy lazy imports happen at collection, not in a timed test)
import mercato.ctr.cli  # noqa: F401
from mercato.ctr import FeatureSchema
from mercato.data import CTRSplits

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def _warm_up_optimizer() -> None:
    """The first ``optimizer.step()`` of a process imports torch._dynamo (~5 s on a busy machine); pay that
    once at collection so that no single test's time includes it."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param])
    param.sum().backward()
    opt.step()


_warm_up_optimizer()


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


@pytest.fixture
def splits() -> CTRSplits:
    return make_splits()


@pytest.fixture
def schema(splits: CTRSplits) -> FeatureSchema:
    return FeatureSchema.fit(splits, n_buckets=4, max_tokens=3)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors run faster on one thread, and much faster on a busy machine (no OpenMP spin-waits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
