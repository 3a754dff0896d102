"""Classical baselines on tiny hand-built ratings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mercato.reczero.baselines import BiasBaseline, GlobalMean, MatrixFactorization


def _ratings() -> pd.DataFrame:
    # user 1 rates high, user 2 low; item 10 is liked, item 20 disliked
    return pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 2],
            "item_id": [10, 20, 30, 10, 20, 30],
            "rating": [5.0, 3.0, 4.0, 3.0, 1.0, 2.0],
        }
    )


def test_global_mean():
    assert GlobalMean().fit(_ratings()).predict([1, 99], [10, 99]).tolist() == [3.0, 3.0]


def test_bias_baseline_hand_case_without_shrinkage():
    m = BiasBaseline(reg=0.0, iters=50).fit(_ratings())
    # exact additive structure: mu 3, b_u = +-1, b_i = +1, -1, 0
    np.testing.assert_allclose(m.predict([1, 2, 2], [10, 20, 30]), [5.0, 1.0, 2.0], atol=1e-6)
    assert m.predict([99], [99])[0] == pytest.approx(3.0)  # unseen -> mu


def test_bias_shrinkage_pulls_toward_mean():
    loose, tight = BiasBaseline(reg=0.0).fit(_ratings()), BiasBaseline(reg=100.0).fit(_ratings())
    assert abs(tight.predict([1], [10])[0] - 3.0) < abs(loose.predict([1], [10])[0] - 3.0)


def test_mf_fits_training_data_and_clips():
    df = _ratings()
    mf = MatrixFactorization(dim=4, epochs=60, lr=0.1, reg=0.0).fit(df)
    assert mf.loss_history_[-1] < 0.25 * mf.loss_history_[0]
    pred = mf.predict(df["user_id"].tolist(), df["item_id"].tolist())
    assert np.abs(pred - df["rating"].to_numpy()).mean() < 0.3
    assert 1.0 <= mf.predict([1], [999])[0] <= 5.0
