"""The synthetic field-interaction benchmark: seeded, asymmetric sparse pairs, a correct Bayes ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from mercato.core.metrics import auc
from mercato.data.synthetic import field_interaction_data, pair_strengths


def small(**kw: object) -> object:
    args = {"num_fields": 5, "cardinality": 50, "n_samples": 4000, "num_pairs": 4, "seed": 3}
    args.update(kw)
    return field_interaction_data(**args)  # type: ignore[arg-type]


def test_shapes_columns_and_seeding() -> None:
    data = small()
    s = data.splits  # type: ignore[attr-defined]
    assert s.categorical == [f"f{k}" for k in range(5)] and s.numeric == [] and s.multihot == []
    assert len(s.train) + len(s.valid) + len(s.test) == 4000 and len(s.test) == 400
    assert set(s.train["label"].unique()) <= {0.0, 1.0}
    assert s.train["f0"].max() < 50 and (s.train["user_id"] == s.train["f0"]).all()
    again = small()
    assert again.splits.train.equals(s.train) and again.bayes_auc == data.bayes_auc  # type: ignore[attr-defined]
    assert not small(seed=4).splits.train.equals(s.train)  # type: ignore[attr-defined]


def test_pairs_are_sparse_ordered_and_asymmetric() -> None:
    strengths, pairs = pair_strengths(6, 7, 2.0, np.random.default_rng(0))
    assert len(set(pairs)) == 7 and all(i != j for i, j in pairs)
    assert np.count_nonzero(strengths) == 7
    assert not np.allclose(strengths, strengths.T)
    assert np.all((np.abs(strengths[strengths != 0]) >= 1.0) & (np.abs(strengths[strengths != 0]) <= 3.0))
    with pytest.raises(ValueError, match="num_pairs"):
        pair_strengths(3, 7, 1.0, np.random.default_rng(0))


def test_bayes_auc_is_the_auc_of_the_true_probability_and_beats_a_noisy_score() -> None:
    data = small(n_samples=20000)
    test = data.splits.test  # type: ignore[attr-defined]
    assert data.bayes_auc == pytest.approx(auc(test["label"], test["p_true"]))  # type: ignore[attr-defined]
    assert 0.6 < data.bayes_auc < 1.0  # type: ignore[attr-defined]
    noisy = test["p_true"] + np.random.default_rng(0).normal(0, 0.2, len(test))
    assert auc(test["label"], noisy) < data.bayes_auc  # type: ignore[attr-defined]


def test_label_noise_lowers_the_ceiling_and_pairs_carry_signal() -> None:
    clean, noisy = small(flip_prob=0.0, n_samples=20000), small(flip_prob=0.3, n_samples=20000)
    assert noisy.bayes_auc < clean.bayes_auc - 0.05  # type: ignore[attr-defined]
    p = noisy.splits.train["p_true"]  # type: ignore[attr-defined]
    assert p.min() >= 0.3 and p.max() <= 0.7
    no_pairs = small(num_pairs=0, first_order_std=0.0, n_samples=2000)
    assert np.allclose(no_pairs.splits.train["p_true"], no_pairs.splits.train["p_true"].iloc[0])  # type: ignore[attr-defined]


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="flip_prob"):
        small(flip_prob=0.5)
    with pytest.raises(ValueError, match="num_fields"):
        small(num_fields=1)
