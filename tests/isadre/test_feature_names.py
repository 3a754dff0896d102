"""Feature names: a DataFrame query in another column order gives the same log ratio (issue 23 §5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mercato.isadre import (
    ISADRE,
    ClassifierDRE,
    ClassifierDREConfig,
    ISADREConfig,
    TimeScoreDRE,
    TimeScoreDREConfig,
    TrainConfig,
)

TINY = TrainConfig(n_iters=3, hidden=8, n_blocks=1, emb_dim=8, batch_size=32, val_fraction=0.0)


def _estimators() -> list:
    return [
        ISADRE(ISADREConfig(train=TINY)),
        TimeScoreDRE(TimeScoreDREConfig(train=TINY, n_quad_steps=4)),
        ClassifierDRE(ClassifierDREConfig(model="logistic")),
    ]


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    cols = ["a", "b", "c"]
    # columns on different scales, so that a permuted query changes the estimate of every model
    scale = np.array([1.0, 5.0, 0.2])
    xp = pd.DataFrame(rng.normal(0.5, 1.0, (64, 3)) * scale, columns=cols)
    xq = pd.DataFrame(rng.normal(0.0, 1.0, (64, 3)) * scale, columns=cols)
    return xp, xq


@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_query_in_another_column_order_gives_same_log_ratio(est) -> None:
    xp, xq = _frames()
    est.fit(xp, xq)
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    ref = est.log_ratio(xp)
    shuffled = xp[["c", "a", "b"]]
    # the old code read the permuted columns positionally and gave other numbers
    assert not np.allclose(est.log_ratio(shuffled.to_numpy()), ref)
    np.testing.assert_allclose(est.log_ratio(shuffled), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_missing_or_extra_column_named(est) -> None:
    xp, xq = _frames()
    est.fit(xp, xq)
    with pytest.raises(ValueError, match=r"missing: \['b'\].*extra: \['z'\]"):
        est.log_ratio(xp.rename(columns={"b": "z"}))


@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_fit_aligns_q_columns_to_p(est) -> None:
    xp, xq = _frames()
    ref = type(est)(est.config).fit(xp, xq).log_ratio(xp)
    np.testing.assert_allclose(est.fit(xp, xq[["b", "c", "a"]]).log_ratio(xp), ref, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"X_q: .*missing: \['a'\]"):
        est.fit(xp, xq.drop(columns="a"))


def test_array_fit_records_no_names() -> None:
    xp, xq = _frames()
    est = ClassifierDRE(ClassifierDREConfig(model="logistic")).fit(xp, xq)
    est.fit(xp.to_numpy(), xq.to_numpy())
    assert not hasattr(est, "feature_names_in_")
    assert est.log_ratio(xp).shape == (64,)
