"""Behaviour-sequence data: history strings by hand, long synthetic sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mercato.aif.data import add_history, long_sequences


def test_history_is_earlier_items_most_recent_first() -> None:
    df = pd.DataFrame(
        {"user_id": [1, 2, 1, 1, 2], "item_id": [10, 20, 11, 12, 21], "timestamp": [5, 1, 6, 7, 2]},
        index=[4, 3, 2, 1, 0],
    )
    h = add_history(df, max_len=2)
    assert h.loc[4] == "" and h.loc[2] == "10" and h.loc[1] == "11|10"  # user 1: 10 -> 11 -> 12
    assert h.loc[3] == "" and h.loc[0] == "20"  # user 2 never sees user 1's items
    assert add_history(df, max_len=1).loc[1] == "11"


def test_long_sequences() -> None:
    seq, centres = long_sequences(3, length=1200, dim=8, num_interests=2, seed=0)
    assert seq.shape == (3, 1200, 8) and centres.shape == (3, 2, 8)
    # every event lies near one of its own user's interests (noise 0.3 per coordinate)
    dist = np.linalg.norm(seq[:, :, None, :] - centres[:, None, :, :], axis=-1).min(-1)
    assert dist.max() < 3.0 and np.allclose(np.linalg.norm(centres, axis=-1), 1.0)
    with pytest.raises(ValueError, match="length"):
        long_sequences(1, length=0)
