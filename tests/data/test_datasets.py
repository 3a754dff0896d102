import numpy as np
import pytest

from mercato.data import load_movielens, load_open_bandit, load_prices, movielens_ctr, movielens_sequences
from mercato.data.splits import per_user_time_split


def test_movielens_100k_shapes_and_side_information():
    ml = load_movielens("100k")
    assert ml.ratings.shape == (100_000, 4)
    assert ml.ratings["user_id"].nunique() == 943 and ml.ratings["item_id"].nunique() == 1682
    assert set(ml.ratings["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    toy = ml.items.set_index("item_id").loc[1]
    assert toy["title"] == "Toy Story" and toy["year"] == 1995 and "Animation" in toy["genres"].split("|")
    assert set(ml.users.columns) == {"user_id", "age", "gender", "occupation", "zip"}


def test_movielens_ctr_view_is_leak_free_and_seeded():
    ml = load_movielens("100k")
    a = movielens_ctr(ml, seed=0)
    b = movielens_ctr(ml, seed=0)
    assert a.train.equals(b.train) and a.test.equals(b.test)
    assert len(a.train) + len(a.valid) + len(a.test) == 100_000
    assert set(a.train["label"].unique()) == {0.0, 1.0}
    # label definition: rating >= 4 is a click
    merged = a.test.merge(ml.ratings, on=["user_id", "item_id", "timestamp"])
    assert ((merged["rating"] >= 4) == (merged["label"] == 1)).all()
    last_train = a.train.groupby("user_id")["timestamp"].max()
    first_valid = a.valid.groupby("user_id")["timestamp"].min()
    first_test = a.test.groupby("user_id")["timestamp"].min()
    assert (first_valid >= last_train.loc[first_valid.index]).all()
    assert (first_test >= last_train.loc[first_test.index]).all()


def test_per_user_time_split_fractions():
    import pandas as pd

    df = pd.DataFrame({"u": np.repeat([1, 2], 20), "t": np.tile(np.arange(20), 2)})
    train, valid, test = per_user_time_split(df, "u", "t", valid_frac=0.1, test_frac=0.2)
    assert len(test) == 8 and len(valid) == 4 and len(train) == 28
    assert test.groupby("u")["t"].min().tolist() == [16, 16]


def test_sequences_are_time_ordered():
    seq = movielens_sequences("100k", min_length=20)
    assert len(seq) == 943  # every ML-100K user has >= 20 ratings
    assert all(np.all(np.diff(ts) >= 0) for ts in seq["timestamps"])
    assert all(len(i) == len(r) for i, r in zip(seq["item_ids"], seq["ratings"]))


def test_open_bandit_click_log():
    log, ctx = load_open_bandit("random", "all")
    assert len(log) == 10_000 and log["item_id"].nunique() == 80 and len(ctx) == 80
    assert 0 < log["click"].mean() < 0.02
    assert log["timestamp"].is_monotonic_increasing


def test_packaged_prices():
    df = load_prices("AAPL")
    assert list(df.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert df["date"].is_monotonic_increasing and len(df) == 3270
    assert (df["high"] >= df["low"]).all()
    with pytest.raises(ValueError, match="packaged tickers"):
        load_prices("ZZZZ")


@pytest.mark.integration
def test_movielens_1m_ctr_view():
    s = movielens_ctr("1m")
    n = len(s.train) + len(s.valid) + len(s.test)
    assert n == 1_000_209
    assert s.train["user_id"].nunique() == 6040
