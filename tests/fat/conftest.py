"""Tiny hand-built CTR data shared by the FAT tests (5 fields: 3 categorical, 1 numeric, 1 multi-hot)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mercato.ctr.schema import CTRTensors, FeatureSchema
from mercato.data.splits import CTRSplits


def tiny_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 6, n),
            "item_id": rng.integers(0, 9, n),
            "cat": rng.choice(["a", "b", "c"], n),
            "price": rng.normal(size=n),
            "tags": rng.choice(["x|y", "y", "", "z|x|y"], n),
            "label": rng.integers(0, 2, n).astype(np.float32),
        }
    )


@pytest.fixture
def tiny() -> tuple[FeatureSchema, CTRTensors]:
    """A fitted schema (F = 5) and 32 encoded rows."""
    frame = tiny_frame(32, 0)
    splits = CTRSplits(
        frame, frame.iloc[:8], frame.iloc[:8], ["user_id", "item_id", "cat"], ["price"], ["tags"], name="tiny"
    )
    schema = FeatureSchema.fit(splits, n_buckets=4, max_tokens=3)
    torch.manual_seed(0)
    return schema, schema.encode(frame)


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """Tiny models run fastest single-threaded (and do not fight other jobs for the 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
