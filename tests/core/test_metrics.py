import numpy as np
import pytest
from sklearn import metrics as skm

from mercato.core import metrics as M


@pytest.fixture(params=[0, 1, 2])
def tied_binary(request):
    rng = np.random.default_rng(request.param)
    y = rng.integers(0, 2, size=500).astype(float)
    # Scores rounded to one decimal: many ties, as real CTR predictions have.
    p = np.round(np.clip(0.3 * y + rng.random(500) * 0.7, 0.0, 1.0), 1)
    return y, p


def test_auc_matches_sklearn_with_ties(tied_binary):
    y, p = tied_binary
    assert len(np.unique(p)) < 20  # the input really has ties
    assert M.auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)


def test_logloss_matches_sklearn_including_extremes(tied_binary):
    y, p = tied_binary  # contains exact 0.0 and 1.0 probabilities, which must be clipped
    assert (p == 0).any() or (p == 1).any()
    assert M.logloss(y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-9)


def test_rmse_mae_match_sklearn():
    rng = np.random.default_rng(3)
    y, p = rng.integers(1, 6, 200).astype(float), np.round(rng.random(200) * 5, 1)
    assert M.rmse(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)), abs=1e-9)
    assert M.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-9)


def test_gauc_is_count_weighted_mean_of_per_user_auc(tied_binary):
    y, p = tied_binary
    users = np.random.default_rng(9).integers(0, 12, size=y.size)
    num, den = 0.0, 0
    for u in np.unique(users):
        m = users == u
        if 0 < y[m].sum() < m.sum():
            num += skm.roc_auc_score(y[m], p[m]) * m.sum()
            den += m.sum()
    assert M.gauc(y, p, groups=users) == pytest.approx(num / den, abs=1e-9)


def test_gauc_skips_single_class_users():
    users = np.array([1, 1, 2, 2, 2])
    y = np.array([1, 0, 1, 1, 1])
    p = np.array([0.9, 0.1, 0.2, 0.3, 0.4])
    assert M.gauc(y, p, groups=users) == 1.0  # user 2 has only positives and is ignored


def test_ndcg_matches_sklearn_without_ties():
    rng = np.random.default_rng(4)
    rel = rng.integers(0, 3, size=(20, 15)).astype(float)
    rel[:, 0] = 1.0  # every query has a relevant item
    scores = rng.random((20, 15))
    for k in (1, 5, 10):
        assert M.ndcg_at_k(rel, scores, k) == pytest.approx(skm.ndcg_score(rel, scores, k=k), abs=1e-9)


def test_recall_at_k_hand_computed():
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 1]])
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    # query 1: top-2 = items 0,1 -> 1 of 2 relevant; query 2: top-2 = items 3,2 -> 1 of 1.
    assert M.recall_at_k(rel, scores, 2) == pytest.approx((0.5 + 1.0) / 2)


def test_ece_and_pcoc_hand_computed():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.05, 0.95, 0.55, 0.45])
    # bins: 0 -> {0.05: y0}, 9 -> {0.95: y1}, 5 -> {0.55: y1}, 4 -> {0.45: y0}
    expected = (0.05 + 0.05 + 0.45 + 0.45) / 4
    assert M.ece(y, p) == pytest.approx(expected)
    assert M.pcoc(y, p) == pytest.approx(2.0 / 2.0)
    assert M.pcoc([1, 0], [0.2, 0.2]) == pytest.approx(0.4)


def test_degenerate_inputs_raise_instead_of_nan():
    with pytest.raises(ValueError, match="one class"):
        M.auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        M.logloss([1, 0], [np.nan, 0.2])
    with pytest.raises(ValueError, match="values"):
        M.rmse([1, 2, 3], [1, 2])


def test_gauc_groups_are_keyword_only_so_the_old_order_fails():
    users = np.array([1, 1, 2, 2])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    p = np.array([0.9, 0.1, 0.2, 0.8])
    with pytest.raises(TypeError):
        M.gauc(users, y, p)  # type: ignore[misc]  # the swapped order used to return a wrong number
    assert M.gauc(y, p, groups=users) == 1.0


def test_auc_and_gauc_refuse_fractional_labels():
    with pytest.raises(ValueError, match="fractional values such as 0.3"):
        M.auc([0.0, 0.3, 1.0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="non-binary values such as 2"):
        M.auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="GAUC needs a binary y_true"):
        M.gauc([0.0, 0.5, 1.0, 0.0], [0.1, 0.2, 0.3, 0.4], groups=[1, 1, 2, 2])
    assert M.auc([True, False, True], [0.9, 0.1, 0.8]) == 1.0  # booleans are binary
